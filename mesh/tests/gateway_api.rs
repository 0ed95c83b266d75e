//! The vendored Gateway API bundle is the upstream one, unmodified; and applying it to a real cluster
//! creates only what is absent, changes nothing on a second run, and never downgrades.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use mesh::gateway_api::{self, Action};

#[test]
fn the_vendored_bundle_is_the_upstream_standard_channel_unmodified() {
    // The Go module proxy serves the upstream repository at the tag, checksum-verified by the Go sum database.
    let tmp = std::env::temp_dir().join(format!("meshdeck-gwapi-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let out = std::process::Command::new("go")
        .args(["mod", "download", "-json", "sigs.k8s.io/gateway-api@v1.4.0"])
        .current_dir(&tmp)
        .env("GOFLAGS", "")
        .output()
        .expect("run go (the Go toolchain is required by the test world too)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let dir =
        std::path::PathBuf::from(info["Dir"].as_str().expect("Dir")).join("config/crd/standard");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("gateway.networking.k8s.io_") && n.ends_with(".yaml")
            })
        })
        .collect();
    files.sort();
    assert_eq!(files.len(), 6);
    let mut upstream = String::new();
    for f in files {
        upstream.push_str("---\n");
        upstream.push_str(&std::fs::read_to_string(f).expect("read"));
    }
    assert!(
        upstream == gateway_api::BUNDLE,
        "mesh/crds/gateway-api-v1.4.0-standard.yaml differs from upstream v1.4.0"
    );
}

async fn client(context: &str) -> kube::Client {
    let path = std::env::var("MESHDECK_TEST_KUBECONFIG")
        .unwrap_or_else(|_| panic!("MESHDECK_TEST_KUBECONFIG is not set: run scripts/test, or export MESHDECK_TEST_KUBECONFIG=$(testenv/up 3)"));
    let kc = Kubeconfig::read_from(path).expect("kubeconfig");
    let cfg = kube::Config::from_custom_kubeconfig(
        kc,
        &KubeConfigOptions {
            context: Some(context.into()),
            ..Default::default()
        },
    )
    .await
    .expect("config");
    kube::Client::try_from(cfg).expect("client")
}

async fn resource_versions(api: &Api<CustomResourceDefinition>) -> Vec<String> {
    let mut out = Vec::new();
    for crd in gateway_api::bundle().expect("bundle") {
        let name = crd.metadata.name.clone().expect("name");
        out.push(
            api.get(&name)
                .await
                .expect("crd")
                .metadata
                .resource_version
                .expect("rv"),
        );
    }
    out
}

#[tokio::test]
async fn applying_creates_what_is_absent_is_idempotent_and_never_downgrades() {
    let c = client("c3").await;
    let api: Api<CustomResourceDefinition> = Api::all(c.clone());
    // Start from a cluster without Gateway API.
    for crd in gateway_api::bundle().expect("bundle") {
        let _ = api
            .delete(
                crd.metadata.name.as_deref().expect("name"),
                &DeleteParams::default(),
            )
            .await;
    }
    for crd in gateway_api::bundle().expect("bundle") {
        let name = crd.metadata.name.clone().expect("name");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while api.get_opt(&name).await.expect("get").is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "CRD {name} not deleted"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let plan = gateway_api::apply(&c).await.expect("apply");
    assert!(
        plan.actions.iter().all(|(_, a)| *a == Action::Create),
        "{plan:?}"
    );
    assert!(!plan.safe_upgrades_policy);
    for crd in gateway_api::bundle().expect("bundle") {
        let name = crd.metadata.name.clone().expect("name");
        kube::runtime::wait::await_condition(
            api.clone(),
            &name,
            kube::runtime::conditions::is_crd_established(),
        )
        .await
        .expect("established");
    }
    // A second run writes nothing. (First let the apiserver finish its own status updates of the new CRDs.)
    let mut before = resource_versions(&api).await;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = resource_versions(&api).await;
        if now == before {
            break;
        }
        before = now;
    }
    let plan = gateway_api::apply(&c).await.expect("again");
    assert!(
        plan.actions.iter().all(|(_, a)| *a == Action::UpToDate),
        "{plan:?}"
    );
    assert_eq!(resource_versions(&api).await, before);

    // A newer bundle on the cluster is kept.
    let pp = PatchParams::apply("someone-else").force();
    let newer = serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gateways.gateway.networking.k8s.io", "annotations": {"gateway.networking.k8s.io/bundle-version": "v1.5.0"}}});
    api.patch(
        "gateways.gateway.networking.k8s.io",
        &pp,
        &Patch::Apply(&newer),
    )
    .await
    .expect("annotate");
    let before = resource_versions(&api).await;
    let plan = gateway_api::apply(&c).await.expect("no downgrade");
    let gw = plan
        .actions
        .iter()
        .find(|(n, _)| n == "gateways.gateway.networking.k8s.io")
        .map(|(_, a)| a.clone());
    assert_eq!(
        gw,
        Some(Action::KeepNewer {
            installed: "v1.5.0".into()
        })
    );
    assert_eq!(resource_versions(&api).await, before, "nothing was written");
    // Put it back as the bundle has it, for the other tests.
    let bundled = gateway_api::bundle()
        .expect("bundle")
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("gateways.gateway.networking.k8s.io"))
        .expect("gateways");
    api.patch(
        "gateways.gateway.networking.k8s.io",
        &PatchParams::apply(mesh::FIELD_MANAGER).force(),
        &Patch::Apply(&bundled),
    )
    .await
    .expect("restore");
    let crd = api
        .get("gateways.gateway.networking.k8s.io")
        .await
        .expect("get");
    assert_eq!(
        crd.metadata
            .annotations
            .unwrap_or_default()
            .get("gateway.networking.k8s.io/bundle-version")
            .map(String::as_str),
        Some("v1.4.0")
    );
}
