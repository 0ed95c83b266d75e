//! Returns clusters of the test world to their freshly started state (no mesh, no faults), for the browser
//! tests. usage: reset CONTEXT…   (needs MESHDECK_TEST_KUBECONFIG and MESHDECK_TESTENV_BIN).

#[tokio::main]
async fn main() {
    let contexts: Vec<String> = std::env::args().skip(1).collect();
    let refs: Vec<&str> = contexts.iter().map(String::as_str).collect();
    testworld::reset_all(&refs).await;
}
