//! Day two against the test world: clusters added to a running mesh, links removed, and the mesh taken out
//! of a cluster (`membership`), upgrades (`upgrade`), the mesh's certificates reissued and its root rotated
//! (`trust`) — each a job like a setup, checked in the clusters. The helpers all of them use are here.

use super::*;

mod membership;
mod trust;
mod upgrade;

pub(super) use upgrade::smc_version;

/// A console (its own database, `tag`) with c1–c4 reset and registered, and a succeeded setup of a full mesh
/// of `mesh` at `version`: the store, the registry, the jobs, the root's id and the setup job's id (which names
/// the mesh).
pub(super) async fn running_mesh(
    tag: &str,
    mesh: &[&str],
    version: &str,
) -> (Store, Registry, Jobs, String, String) {
    reset_all(&["c1", "c2", "c3", "c4"]).await;
    let (store, registry, jobs) = console(tag, Duration::from_secs(10)).await;
    for c in ["c1", "c2", "c3", "c4"] {
        register(&registry, c).await;
    }
    let (root_id, _) = jobs.root("alice").await.expect("root");
    let mut setup = spec(mesh, &root_id);
    setup.istio_version = version.into();
    let base = jobs
        .start_setup(setup, Some("meshdeck-test-license".into()), "alice")
        .await
        .expect("start");
    assert_eq!(wait_finished(&store, &base, 300).await, "succeeded");
    (store, registry, jobs, root_id, base)
}

/// Every object of the mesh a cluster holds, as `kind/namespace/name=resourceVersion` lines.
pub(super) async fn mesh_objects(context: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for (kind, ns) in [
        ("servicemeshcontrollers", "gloo-mesh"),
        ("gateways.gateway.networking.k8s.io", "istio-eastwest"),
        ("secrets", "istio-system"),
        ("configmaps", "gloo-mesh"),
    ] {
        let text = kubectl_ok(
            context,
            &[
                "get",
                kind,
                "-n",
                ns,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion}{\"\\n\"}{end}",
            ],
            None,
        )
        .await;
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some((name, version)) = line.split_once('=') {
                out.insert(format!("{kind}/{ns}/{name}"), version.to_string());
            }
        }
    }
    out
}

pub(super) fn gateways(context: &str) -> impl std::future::Future<Output = String> + '_ {
    kubectl_ok(
        context,
        &[
            "get",
            "gateways.gateway.networking.k8s.io",
            "-n",
            "istio-eastwest",
            "-o",
            "name",
        ],
        None,
    )
}
