//! Returns clusters of the test world to their freshly started state (no mesh, no faults), for the browser
//! tests; with `--management-plane M`, then installs the platform team's Gloo management plane on M (with
//! config distribution) and relays the other clusters to it, as automatic peering needs (mesh-spec.md §7).
//! `--stop-apiserver C` / `--start-apiserver C` instead stop or start one cluster's kube-apiserver (an outage,
//! for the Topology page's test), nothing else.
//! usage: reset [--management-plane CONTEXT] CONTEXT…   (needs MESHDECK_TEST_KUBECONFIG and MESHDECK_TESTENV_BIN)
//!        reset --stop-apiserver CONTEXT | --start-apiserver CONTEXT

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    match (args.peek().map(String::as_str), std::env::args().nth(2)) {
        (Some("--stop-apiserver"), Some(c)) => return testworld::stop_apiserver(&c).await,
        (Some("--start-apiserver"), Some(c)) => return testworld::start_apiserver(&c).await,
        _ => {}
    }
    let mut management = None;
    let mut contexts = vec![];
    while let Some(a) = args.next() {
        if a == "--management-plane" {
            management = args.next();
        } else {
            contexts.push(a);
        }
    }
    let refs: Vec<&str> = contexts.iter().map(String::as_str).collect();
    testworld::reset_all(&refs).await;
    if let Some(m) = management {
        let agents: Vec<&str> = refs.iter().copied().filter(|c| *c != m).collect();
        testworld::install_management_plane(&m, &agents).await;
    }
}
