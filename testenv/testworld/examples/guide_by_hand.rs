//! The guide done by hand, the way a platform team runs it: one cluster after another with kubectl and helm
//! (the baseline `bench/setup` compares the console with). For each cluster: `cacerts` from a shared root,
//! the operator (helm), the Gateway API CRDs, the ServiceMeshController and a wait for it, the east-west
//! gateway and a wait for it; then a peer gateway for every ordered pair; then a wait until every peer gateway
//! reports all its peering conditions true.
//!
//! usage: cargo run -p testworld --example guide_by_hand -- c1 c2 c3   (needs MESHDECK_TEST_KUBECONFIG and
//! MESHDECK_TESTENV_BIN, as the tests do). Prints `guide_by_hand clusters=N seconds=S`.

use std::time::Instant;

use testworld::*;

#[tokio::main]
#[allow(
    clippy::print_stdout,
    reason = "the figures are this program's output, read by bench/setup"
)]
async fn main() {
    let contexts: Vec<String> = std::env::args().skip(1).collect();
    assert!(
        !contexts.is_empty(),
        "usage: guide_by_hand CONTEXT [CONTEXT…]"
    );
    let t0 = Instant::now();
    let root = RootCa::new();
    for c in &contexts {
        install(Install {
            context: c,
            root: Some(&root),
            license: "meshdeck-bench-license",
            extensions: None,
            smc_extra: "",
        })
        .await;
        wait_smc_succeeded(c).await;
        create_eastwest(c, false).await;
        eprintln!(
            "guide_by_hand: {c} installed after {:.1}s",
            t0.elapsed().as_secs_f64()
        );
    }
    for from in &contexts {
        for to in contexts.iter().filter(|t| *t != from) {
            let yaml = link_yaml(to, false).await;
            kubectl_ok(from, &["apply", "--server-side", "-f", "-"], Some(&yaml)).await;
        }
    }
    for from in &contexts {
        for to in contexts.iter().filter(|t| *t != from) {
            wait_gateway(
                from,
                &format!("istio-remote-peer-{to}"),
                all_peer_conditions_true,
            )
            .await;
        }
    }
    println!(
        "guide_by_hand clusters={} seconds={:.1}",
        contexts.len(),
        t0.elapsed().as_secs_f64()
    );
}
