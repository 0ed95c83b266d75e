//! Helpers for tests against the test world: clients for the contexts of the testenv kubeconfig, the pinned
//! kubectl and helm, waits on conditions, a reset that returns a cluster to its freshly started state (here),
//! and a test root CA and the guide's steps done by hand (`guide`).
//!
//! The tests need a running world: `testenv/up 3` (the project's test command starts it and exports
//! MESHDECK_TEST_KUBECONFIG and MESHDECK_TESTENV_BIN).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::LazyLock;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

pub mod fuzz;
mod guide;

pub use guide::*;

/// The clusters are shared by every test of this binary: tests take this lock so they run one at a time.
pub static WORLD_LOCK: LazyLock<tokio::sync::Mutex<()>> =
    LazyLock::new(|| tokio::sync::Mutex::new(()));

pub fn kubeconfig_path() -> PathBuf {
    PathBuf::from(std::env::var("MESHDECK_TEST_KUBECONFIG").unwrap_or_else(|_| {
        panic!(
            "MESHDECK_TEST_KUBECONFIG is not set: these tests need the local clusters. Run the project's test \
             command (scripts/test), or start them with `testenv/up 3` and export \
             MESHDECK_TEST_KUBECONFIG=$(testenv/up 3) MESHDECK_TESTENV_BIN=$(testenv/build-bins)"
        )
    }))
}

pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var("MESHDECK_TESTENV_BIN")
        .unwrap_or_else(|_| panic!("MESHDECK_TESTENV_BIN is not set (see scripts/test)"));
    PathBuf::from(dir).join(name)
}

pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub async fn client(context: &str) -> Client {
    let kc = Kubeconfig::read_from(kubeconfig_path()).expect("read kubeconfig");
    let opts = KubeConfigOptions {
        context: Some(context.to_string()),
        ..Default::default()
    };
    let cfg = Config::from_custom_kubeconfig(kc, &opts)
        .await
        .expect("kubeconfig context");
    Client::try_from(cfg).expect("client")
}

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

async fn run(
    program: PathBuf,
    args: &[&str],
    stdin: Option<&str>,
    envs: &[(&str, String)],
) -> Output {
    let mut cmd = tokio::process::Command::new(&program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        si.write_all(input.as_bytes()).await.expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().await.expect("wait");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The test world's state folder (where its kubeconfig lives) and its first port.
fn world_state() -> (PathBuf, u16) {
    let state = kubeconfig_path()
        .parent()
        .expect("state folder")
        .to_path_buf();
    let c1: u16 = std::fs::read_to_string(state.join("c1/port"))
        .expect("c1 port")
        .trim()
        .parse()
        .expect("port");
    (state, c1 - 1)
}

/// Stops one cluster's kube-apiserver, as an outage would; its data (in etcd) stays.
pub async fn stop_apiserver(context: &str) {
    let (state, _) = world_state();
    let lib = repo_path("testenv/lib.sh");
    let script = format!(". '{}'; stop '{context}-apiserver'", lib.display());
    let out = run(
        "bash".into(),
        &["-c", &script],
        None,
        &[("STATE", state.display().to_string())],
    )
    .await;
    assert!(out.ok, "stopping {context}'s apiserver: {}", out.stderr);
}

/// Starts again what `stop_apiserver` stopped (testenv/up over the same world: what runs is kept).
pub async fn start_apiserver(context: &str) {
    let (state, base) = world_state();
    let kc = std::fs::read_to_string(kubeconfig_path()).expect("kubeconfig");
    // The clusters list of testenv's kubeconfig: one `- name: cN` line per cluster.
    let clusters = kc.lines().filter(|l| l.starts_with("- name: c")).count();
    let mut envs = vec![
        ("MESHDECK_TESTENV_STATE", state.display().to_string()),
        ("MESHDECK_TESTENV_PORT", base.to_string()),
    ];
    if std::env::var_os("MESHSIM_BIN").is_none() {
        envs.push((
            "MESHSIM_BIN",
            repo_path("target/debug/meshsim").display().to_string(),
        ));
    }
    let out = run(
        repo_path("testenv/up"),
        &[&clusters.to_string()],
        None,
        &envs,
    )
    .await;
    assert!(
        out.ok,
        "starting {context}'s apiserver again: {}",
        out.stderr
    );
}

/// Runs the pinned kubectl against a context of the test kubeconfig.
pub async fn kubectl(context: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let kc = kubeconfig_path().display().to_string();
    let mut all = vec!["--kubeconfig", &kc, "--context", context];
    all.extend_from_slice(args);
    run(bin("kubectl"), &all, stdin, &[]).await
}

pub async fn kubectl_ok(context: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl(context, args, stdin).await;
    assert!(
        out.ok,
        "kubectl {args:?} on {context} failed: {}",
        out.stderr
    );
    out.stdout
}

/// Runs the pinned helm against a context, with its caches in a temporary folder.
pub async fn helm(context: &str, args: &[&str]) -> Output {
    let kc = kubeconfig_path().display().to_string();
    let home = std::env::temp_dir().join("meshdeck-testenv-helm");
    let mut all = vec!["--kubeconfig", &kc, "--kube-context", context];
    all.extend_from_slice(args);
    let envs = [
        ("HELM_CACHE_HOME", home.join("cache").display().to_string()),
        (
            "HELM_CONFIG_HOME",
            home.join("config").display().to_string(),
        ),
        ("HELM_DATA_HOME", home.join("data").display().to_string()),
    ];
    run(bin("helm"), &all, None, &envs).await
}

/// Polls `f` every 100 ms until it returns Some, or panics after `secs` with `what` and the last value seen.
pub async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let last = match f().await {
            Ok(v) => return v,
            Err(e) => e,
        };
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}; last seen: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn gateway_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "Gateway"),
        "gateways",
    )
}

pub fn smc_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("operator.gloo.solo.io", "v1", "ServiceMeshController"),
        "servicemeshcontrollers",
    )
}

pub async fn get_dynamic(
    c: &Client,
    ar: &ApiResource,
    ns: &str,
    name: &str,
) -> Option<DynamicObject> {
    Api::<DynamicObject>::namespaced_with(c.clone(), ns, ar)
        .get_opt(name)
        .await
        .expect("get")
}

pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Sets the simulator's fault knobs of a cluster (data of `kube-system/meshsim-faults`), replacing all.
pub async fn set_faults(context: &str, faults: &[(&str, &str)]) {
    let c = client(context).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "kube-system");
    let data: serde_json::Map<String, Value> = faults
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    api.patch(
        "meshsim-faults",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": null})),
    )
    .await
    .expect("clear faults");
    if !data.is_empty() {
        api.patch(
            "meshsim-faults",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": data})),
        )
        .await
        .expect("set faults");
    }
}

/// The install namespace of the tests of a control plane outside istio-system (reset deletes it too).
pub const CUSTOM_ISTIO_NAMESPACE: &str = "istio-custom";

/// Returns a cluster to the state `testenv/up` left it in: no operator release, no mesh namespaces, no
/// ServiceMeshControllers, no management plane, no fault knobs. Gateway API CRDs stay.
pub async fn reset(context: &str) {
    set_faults(context, &[]).await;
    for release in ["gloo-operator", "gloo-platform", "gloo-platform-crds"] {
        let _ = helm(
            context,
            &[
                "uninstall",
                release,
                "-n",
                "gloo-mesh",
                "--ignore-not-found",
            ],
        )
        .await;
    }
    let c = client(context).await;
    let ns_api: Api<Namespace> = Api::all(c.clone());
    let crd_exists = kubectl(
        context,
        &["get", "crd", "servicemeshcontrollers.operator.gloo.solo.io"],
        None,
    )
    .await
    .ok;
    if crd_exists {
        let _ = kubectl(
            context,
            &[
                "delete",
                "servicemeshcontrollers",
                "--all",
                "-A",
                "--wait=false",
            ],
            None,
        )
        .await;
    }
    for ns in [
        "istio-eastwest",
        "istio-system",
        CUSTOM_ISTIO_NAMESPACE,
        "gloo-mesh",
        "meshdeck-test",
    ] {
        let _ = ns_api.delete(ns, &Default::default()).await;
    }
    wait_for(120, &format!("{context}: mesh namespaces deleted"), || {
        let ns_api = ns_api.clone();
        async move {
            for ns in [
                "istio-eastwest",
                "istio-system",
                CUSTOM_ISTIO_NAMESPACE,
                "gloo-mesh",
                "meshdeck-test",
            ] {
                if ns_api
                    .get_opt(ns)
                    .await
                    .map_err(|e| e.to_string())?
                    .is_some()
                {
                    return Err(format!("namespace {ns} still exists"));
                }
            }
            Ok(())
        }
    })
    .await;
}

/// Resets several clusters at once.
pub async fn reset_all(contexts: &[&str]) {
    futures::future::join_all(contexts.iter().map(|c| reset(c))).await;
}
