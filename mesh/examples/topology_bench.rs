//! Benchmark of the topology model (issue 6): a synthetic full mesh of 100 clusters with 50 services each
//! (9900 links), timing `topology::compute` and the `diff` of a one-link change, with the size of the graph as
//! JSON and the process's peak memory. Run: `cargo run --release -p mesh --example topology_bench`.
//! With `TOPOLOGY_BENCH_GRAPH_OUT=PATH` the computed graph is also written to PATH as JSON (the `Graph` the
//! Topology page imports; bench/topology times its rendering). The last line is `key=value` pairs for scripts.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mesh::ids::ClusterName;
use mesh::ids::graph::{ConditionView, EastWestKind, diff};
use mesh::topology::{
    ClusterSnapshot, EastWestState, Expectation, IstiodState, LicenseState, NamespaceState,
    PeerGatewayState, SERVICE_SCOPE_LABEL, ServiceState, SmcState, WorkloadState, compute,
};

const CLUSTERS: usize = 100;
const NAMESPACES: usize = 5;
const SERVICES_PER_NAMESPACE: usize = 10;
const RUNS: usize = 7;

fn cond(t: &str, status: &str, reason: &str, message: &str) -> ConditionView {
    ConditionView {
        type_: t.into(),
        status: status.into(),
        reason: reason.into(),
        message: message.into(),
    }
}

/// What a connected peer gateway reports (§2.3): the Istio gateway controller's two conditions, then the
/// peering controller's three.
fn connected() -> Vec<ConditionView> {
    vec![
        cond("Accepted", "True", "Accepted", "Resource accepted"),
        cond(
            "Programmed",
            "True",
            "Programmed",
            "This Gateway is remote; Istio will not program it",
        ),
        cond(
            "gloo.solo.io/PeerConnected",
            "True",
            "Programmed",
            "istiod connected to peer",
        ),
        cond(
            "gloo.solo.io/PeeringSucceeded",
            "True",
            "Programmed",
            "remote network synced",
        ),
        cond(
            "gloo.solo.io/PeerDataPlaneProgrammed",
            "True",
            "Programmed",
            "peering data plane programmed for cross-network traffic with LoadBalancer service type",
        ),
    ]
}

fn name(i: usize) -> String {
    format!("cluster-{i:03}")
}

fn address(i: usize) -> String {
    format!("10.{}.{}.10", i / 250, i % 250)
}

fn snapshot(i: usize) -> ClusterSnapshot {
    let n = name(i);
    let labels = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let namespaces = (0..NAMESPACES)
        .map(|ns| NamespaceState {
            name: format!("team-{ns}"),
            labels: labels(&[("istio-injection", "enabled")]),
            services: (0..SERVICES_PER_NAMESPACE)
                .map(|s| ServiceState {
                    name: format!("service-{s:02}"),
                    labels: if s.is_multiple_of(2) {
                        labels(&[("app", "demo"), (SERVICE_SCOPE_LABEL, "global")])
                    } else {
                        labels(&[("app", "demo")])
                    },
                })
                .collect(),
        })
        .collect();
    let peers = (0..CLUSTERS)
        .filter(|j| *j != i)
        .map(|j| PeerGatewayState {
            name: format!("istio-remote-peer-{}", name(j)),
            cluster_label: Some(name(j)),
            network_label: Some(name(j)),
            trust_domain: Some(name(j)),
            address: Some(address(j)),
            conditions: connected().into(),
        })
        .collect();
    ClusterSnapshot {
        network: Some(n.clone()),
        region: Some(format!("region-{}", i % 4)),
        operator: Some(WorkloadState {
            desired: 1,
            ready: 1,
        }),
        smc: Some(SmcState {
            phase: Some("SUCCEEDED".into()),
            conditions: vec![cond(
                "Ready",
                "True",
                "SystemReady",
                "All conditions are met",
            )],
            version: Some("1.28.1-patch0".into()),
            install_namespace: None,
        }),
        istiod: Some(IstiodState {
            pods: WorkloadState {
                desired: 2,
                ready: 2,
            },
            revision: Some("gloo".into()),
        }),
        ztunnel: Some(WorkloadState {
            desired: 6,
            ready: 6,
        }),
        cni: Some(WorkloadState {
            desired: 6,
            ready: 6,
        }),
        eastwest: Some(EastWestState {
            kind: EastWestKind::LoadBalancer,
            addresses: vec![address(i)],
            address_override: None,
            programmed: Some(cond(
                "Programmed",
                "True",
                "Programmed",
                "Resource programmed, assigned to service(s) istio-eastwest.istio-eastwest.svc.cluster.local:15008",
            )),
            cluster_label: Some(n.clone()),
        }),
        peers,
        root_fingerprint: Some("3f".repeat(32)),
        trust_domain: Some(n.clone()),
        license: LicenseState::Valid,
        namespaces,
        ..ClusterSnapshot::new(ClusterName::new(&n).expect("valid cluster name"))
    }
}

/// The process's peak resident set (VmHWM), in kB.
fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut d: Vec<Duration>) -> f64 {
    d.sort();
    d[d.len() / 2].as_secs_f64() * 1000.0
}

fn main() {
    let rss_start = peak_rss_kb();
    let snaps: Vec<ClusterSnapshot> = (0..CLUSTERS).map(snapshot).collect();
    let expect = Expectation::full_mesh_of(&snaps);
    let rss_state = peak_rss_kb();

    let mut times = vec![];
    let mut graph = compute(&snaps, &expect);
    for _ in 0..RUNS {
        let t = Instant::now();
        graph = std::hint::black_box(compute(std::hint::black_box(&snaps), &expect));
        times.push(t.elapsed());
    }
    let compute_ms = median(times);
    let rss_graph = peak_rss_kb();
    assert_eq!(graph.links.len(), CLUSTERS * (CLUSTERS - 1));
    assert!(graph.findings.is_empty(), "{:?}", graph.findings);
    let json = serde_json::to_vec(&graph).expect("graph as JSON");
    if let Some(path) = std::env::var_os("TOPOLOGY_BENCH_GRAPH_OUT") {
        std::fs::write(&path, &json).expect("writing the graph JSON to TOPOLOGY_BENCH_GRAPH_OUT");
    }

    // One link stops being connected.
    let mut changed = snaps.clone();
    std::sync::Arc::make_mut(&mut changed[7].peers[3].conditions)[2] = cond(
        "gloo.solo.io/PeerConnected",
        "False",
        "Pending",
        "not connected to peer",
    );
    let new = compute(&changed, &expect);
    let mut times = vec![];
    let mut update = diff(&graph, &new);
    for _ in 0..RUNS {
        let t = Instant::now();
        update = std::hint::black_box(diff(std::hint::black_box(&graph), &new));
        times.push(t.elapsed());
    }
    let diff_ms = median(times);
    let update_json = serde_json::to_vec(&update).expect("update as JSON");
    let rss_end = peak_rss_kb();

    println!(
        "{CLUSTERS} clusters x {} services, full mesh: {} links, {} findings after the change",
        NAMESPACES * SERVICES_PER_NAMESPACE,
        graph.links.len(),
        new.findings.len()
    );
    println!(
        "compute: median {compute_ms:.1} ms of {RUNS} runs; graph JSON {} bytes",
        json.len()
    );
    println!(
        "diff of a one-link change: median {diff_ms:.2} ms; {} link(s), {} cluster(s) upserted; update JSON {} bytes",
        update.upsert_links.len(),
        update.upsert_clusters.len(),
        update_json.len()
    );
    println!(
        "peak RSS (VmHWM): start {rss_start} kB, with snapshots {rss_state} kB, after compute {rss_graph} kB, end {rss_end} kB"
    );
    println!(
        "graph100_ms={compute_ms:.1} graph100_json_bytes={} diff_ms={diff_ms:.2} update_json_bytes={} rss_kb={rss_end} rss_snapshots_kb={rss_state}",
        json.len(),
        update_json.len()
    );
}
