//! Helpers for tests against the test world: clients for the contexts of the testenv kubeconfig, the pinned
//! kubectl and helm, waits on conditions, a reset that returns a cluster to its freshly started state, a test
//! root CA, and the guide's steps done by hand.
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

/// A shared root and one intermediate per cluster, shaped like istio's tools/certs recipe (mesh-spec.md §6.2).
pub struct RootCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pub cert_pem: String,
}

impl Default for RootCa {
    fn default() -> Self {
        Self::new()
    }
}

impl RootCa {
    pub fn new() -> RootCa {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Istio");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Root CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("root");
        RootCa {
            cert_pem: cert.pem(),
            params,
            key,
        }
    }

    /// The `cacerts` Secret for one cluster (§6.1).
    pub fn cacerts_yaml(&self, cluster: &str) -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["istiod.istio-system.svc".to_string()])
            .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Istio");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Intermediate CA");
        params
            .distinguished_name
            .push(rcgen::DnType::LocalityName, cluster);
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).expect("intermediate").pem();
        let chain = format!("{cert}{}", self.cert_pem);
        let b = |s: &str| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(s)
        };
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: cacerts\n  namespace: istio-system\ntype: Opaque\ndata:\n  \
             ca-cert.pem: {}\n  ca-key.pem: {}\n  root-cert.pem: {}\n  cert-chain.pem: {}\n",
            b(&cert),
            b(&key.serialize_pem()),
            b(&self.cert_pem),
            b(&chain)
        )
    }
}

/// The guide's steps for one cluster, up to a ready control plane: shared root (optional), operator chart,
/// Gateway API CRDs, ServiceMeshController (the guide's YAML), extensions ConfigMap (optional).
pub struct Install<'a> {
    pub context: &'a str,
    pub root: Option<&'a RootCa>,
    pub license: &'a str,
    pub extensions: Option<&'a str>,
    pub smc_extra: &'a str,
}

pub const ISTIO_VERSION: &str = "1.28.1-patch0";

pub async fn apply_gateway_api_crds(context: &str) {
    let path = bin("gateway-api-v1.4.0-standard.yaml")
        .display()
        .to_string();
    kubectl_ok(context, &["apply", "--server-side", "-f", &path], None).await;
    kubectl_ok(
        context,
        &[
            "wait",
            "--for=condition=Established",
            "crd/gateways.gateway.networking.k8s.io",
            "--timeout=60s",
        ],
        None,
    )
    .await;
}

/// The shared root's `cacerts` in istio-system (§6.1), before istiod exists.
pub async fn plug_root(ctx: &str, root: &RootCa) {
    kubectl_ok(ctx, &["create", "namespace", "istio-system"], None).await;
    kubectl_ok(ctx, &["apply", "-f", "-"], Some(&root.cacerts_yaml(ctx))).await;
}

/// The operator chart, installed with helm as the guide does, with an inline license.
pub async fn install_operator(ctx: &str, license: &str) {
    let chart = repo_path("testenv/charts/gloo-operator")
        .display()
        .to_string();
    let license = format!("manager.env.SOLO_ISTIO_LICENSE_KEY={license}");
    let out = helm(
        ctx,
        &[
            "upgrade",
            "--install",
            "gloo-operator",
            &chart,
            "-n",
            "gloo-mesh",
            "--create-namespace",
            "--set",
            &license,
            "--wait",
            "--timeout",
            "120s",
        ],
    )
    .await;
    assert!(out.ok, "helm install on {ctx}: {}", out.stderr);
    kubectl_ok(
        ctx,
        &[
            "wait",
            "--for=condition=Established",
            "crd/servicemeshcontrollers.operator.gloo.solo.io",
            "--timeout=60s",
        ],
        None,
    )
    .await;
}

pub async fn install(i: Install<'_>) {
    let ctx = i.context;
    if let Some(root) = i.root {
        plug_root(ctx, root).await;
    }
    install_operator(ctx, i.license).await;
    apply_gateway_api_crds(ctx).await;
    if let Some(ext) = i.extensions {
        kubectl_ok(ctx, &["apply", "-n", "gloo-mesh", "-f", "-"], Some(ext)).await;
    }
    let smc = format!(
        "apiVersion: operator.gloo.solo.io/v1\nkind: ServiceMeshController\nmetadata:\n  name: managed-istio\n  labels:\n    \
         app.kubernetes.io/name: managed-istio\nspec:\n  cluster: {ctx}\n  network: {ctx}\n  dataplaneMode: Ambient # required for multicluster setups\n  \
         installNamespace: istio-system\n  version: {ISTIO_VERSION}\n{}",
        i.smc_extra
    );
    kubectl_ok(ctx, &["apply", "-n", "gloo-mesh", "-f", "-"], Some(&smc)).await;
}

/// Waits for the ServiceMeshController `gloo-mesh/managed-istio` to reach `phase`.
pub async fn wait_smc_phase(context: &str, phase: &str) -> Value {
    wait_object(context, &smc_ar(), "gloo-mesh", "managed-istio", 60, |v| {
        v["status"]["phase"] == phase
    })
    .await
}

pub async fn wait_smc_succeeded(context: &str) -> Value {
    wait_object(context, &smc_ar(), "gloo-mesh", "managed-istio", 90, |v| {
        v["status"]["phase"] == "SUCCEEDED"
            && condition(v, "Ready").is_some_and(|c| c["status"] == "True")
    })
    .await
}

/// An object as the cluster holds it now, as JSON.
pub async fn get_json(context: &str, ar: &ApiResource, ns: &str, name: &str) -> Option<Value> {
    let obj = get_dynamic(&client(context).await, ar, ns, name).await?;
    Some(serde_json::to_value(obj).expect("object as JSON"))
}

/// The ServiceMeshController `gloo-mesh/managed-istio` as it is now.
pub async fn current_smc(context: &str) -> Value {
    get_json(context, &smc_ar(), "gloo-mesh", "managed-istio")
        .await
        .expect("ServiceMeshController")
}

/// A Gateway of `istio-eastwest` as it is now.
pub async fn current_gateway(context: &str, name: &str) -> Value {
    get_json(context, &gateway_ar(), "istio-eastwest", name)
        .await
        .unwrap_or_else(|| panic!("{context}: gateway {name}"))
}

/// Polls an object every 100 ms until it exists and `pred` holds, for at most `secs`.
pub async fn wait_object(
    context: &str,
    ar: &ApiResource,
    ns: &str,
    name: &str,
    secs: u64,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let c = client(context).await;
    let pred = &pred;
    wait_for(secs, &format!("{context}: {} {ns}/{name}", ar.kind), || {
        let c = c.clone();
        async move {
            let obj = get_dynamic(&c, ar, ns, name)
                .await
                .ok_or_else(|| format!("no {} {name}", ar.kind))?;
            let v = serde_json::to_value(&obj).map_err(|e| e.to_string())?;
            if pred(&v) {
                Ok(v)
            } else {
                Err(v["status"].to_string())
            }
        }
    })
    .await
}

/// The east-west Gateway as `istioctl multicluster expose` makes it (§1.1), optionally the NodePort variant.
pub fn eastwest_yaml(cluster: &str, nodeport: bool) -> String {
    let ann = if nodeport {
        "  annotations:\n    peering.solo.io/data-plane-service-type: NodePort\n"
    } else {
        ""
    };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: istio-eastwest\n  namespace: istio-eastwest\n{ann}  labels:\n    \
         istio.io/expose-istiod: \"15012\"\n    topology.istio.io/network: {cluster}\n    topology.istio.io/cluster: {cluster}\nspec:\n  \
         gatewayClassName: istio-eastwest\n  listeners:\n  - name: cross-network\n    port: 15008\n    protocol: HBONE\n    tls:\n      mode: Passthrough\n  \
         - name: xds-tls\n    port: 15012\n    protocol: TLS\n    tls:\n      mode: Passthrough\n"
    )
}

pub async fn create_eastwest(context: &str, nodeport: bool) -> Value {
    kubectl_ok(context, &["create", "namespace", "istio-eastwest"], None).await;
    kubectl_ok(
        context,
        &["apply", "--server-side", "-f", "-"],
        Some(&eastwest_yaml(context, nodeport)),
    )
    .await;
    wait_gateway(context, "istio-eastwest", |g| {
        let programmed = condition(g, "Programmed").is_some_and(|c| c["status"] == "True");
        programmed
            && g["status"]["addresses"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
    })
    .await
}

pub async fn wait_gateway(context: &str, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_object(context, &gateway_ar(), "istio-eastwest", name, 60, pred).await
}

/// The SHA-256 fingerprint (lowercase hex) of the first certificate of a PEM text.
pub fn pem_fingerprint(pem_text: &str) -> String {
    use sha2::Digest;
    let der = pem::parse(pem_text.as_bytes()).expect("certificate PEM");
    sha2::Sha256::digest(der.contents())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint of the root istiod published in istio-system (`istio-ca-root-cert`, §6).
pub async fn root_fingerprint(context: &str) -> String {
    let pem = kubectl_ok(
        context,
        &[
            "get",
            "cm",
            "-n",
            "istio-system",
            "istio-ca-root-cert",
            "-o",
            "jsonpath={.data.root-cert\\.pem}",
        ],
        None,
    )
    .await;
    pem_fingerprint(&pem)
}

/// The peer Gateway `istioctl multicluster link` writes into `from` for peer `to` (§2.1), read from `to`'s
/// live state with kubectl, as the command does.
pub async fn link_yaml(to: &str, nodeport: bool) -> String {
    let svc = kubectl_ok(
        to,
        &[
            "get",
            "svc",
            "-n",
            "istio-eastwest",
            "istio-eastwest",
            "-o",
            "json",
        ],
        None,
    )
    .await;
    let svc: Value = serde_json::from_str(&svc).expect("svc json");
    let ing = &svc["status"]["loadBalancer"]["ingress"][0];
    let (ty, addr) = match (ing["ip"].as_str(), ing["hostname"].as_str()) {
        (Some(ip), _) => ("IPAddress", ip.to_string()),
        (None, Some(h)) => ("Hostname", h.to_string()),
        _ => panic!("{to}: east-west service has no address: {svc}"),
    };
    let mesh = kubectl_ok(
        to,
        &[
            "get",
            "cm",
            "-n",
            "istio-system",
            "istio-gloo",
            "-o",
            "jsonpath={.data.mesh}",
        ],
        None,
    )
    .await;
    let mesh: Value = serde_yaml::from_str(&mesh).expect("mesh yaml");
    let td = mesh["trustDomain"]
        .as_str()
        .unwrap_or("cluster.local")
        .to_string();
    let np = if nodeport {
        "    peering.solo.io/preferred-data-plane-service-type: NodePort\n"
    } else {
        ""
    };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata:\n  name: istio-remote-peer-{to}\n  namespace: istio-eastwest\n  annotations:\n    \
         gateway.istio.io/service-account: istio-eastwest\n    gateway.istio.io/trust-domain: {td}\n{np}  labels:\n    topology.istio.io/network: {to}\n    \
         topology.istio.io/cluster: {to}\nspec:\n  gatewayClassName: istio-remote\n  addresses:\n  - type: {ty}\n    value: {addr}\n  listeners:\n  \
         - name: cross-network\n    port: 15008\n    protocol: HBONE\n    tls:\n      mode: Passthrough\n  - name: xds-tls\n    port: 15012\n    protocol: TLS\n    \
         tls:\n      mode: Passthrough\n"
    )
}

pub const PEER_CONDITIONS: [&str; 3] = [
    "gloo.solo.io/PeerConnected",
    "gloo.solo.io/PeeringSucceeded",
    "gloo.solo.io/PeerDataPlaneProgrammed",
];

pub fn all_peer_conditions_true(g: &Value) -> bool {
    PEER_CONDITIONS
        .iter()
        .all(|t| condition(g, t).is_some_and(|c| c["status"] == "True"))
}

/// Gloo Platform's CRD release (the stand-in chart) on `context`, upgraded in place with `sets` (`key=value`),
/// as the guide's `helm upgrade gloo-platform-crds … --set …` does (mesh-spec.md §7.1).
pub async fn install_platform_crds(context: &str, sets: &[&str]) {
    let chart = repo_path("testenv/charts/gloo-platform-crds")
        .display()
        .to_string();
    let mut args = vec![
        "upgrade",
        "--install",
        "gloo-platform-crds",
        &chart,
        "-n",
        "gloo-mesh",
        "--create-namespace",
        "--reset-values",
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let out = helm(context, &args).await;
    assert!(out.ok, "gloo-platform-crds on {context}: {}", out.stderr);
}

/// The Gloo management plane as the platform team installs it for automatic peering (mesh-spec.md §7.1): the
/// server with ConfigDistribution on `mgmt`, an agent relaying to it on each of `agents` (the stand-in chart).
pub async fn install_management_plane(mgmt: &str, agents: &[&str]) {
    install_platform_crds(
        mgmt,
        &[
            "featureGates.ConfigDistribution=true",
            "installEnterpriseCrds=true",
        ],
    )
    .await;
    for ctx in agents {
        install_platform_crds(ctx, &["installEnterpriseCrds=true"]).await;
    }
    let chart = repo_path("testenv/charts/gloo-platform")
        .display()
        .to_string();
    let cluster = format!("common.cluster={mgmt}");
    let out = helm(
        mgmt,
        &[
            "upgrade",
            "--install",
            "gloo-platform",
            &chart,
            "-n",
            "gloo-mesh",
            "--create-namespace",
            "--set",
            "glooMgmtServer.enabled=true",
            "--set",
            "featureGates.ConfigDistribution=true",
            "--set",
            &cluster,
            "--wait",
            "--timeout",
            "120s",
        ],
    )
    .await;
    assert!(out.ok, "management plane on {mgmt}: {}", out.stderr);
    let relay = wait_for(30, "mgmt server address", || async {
        let ip = kubectl(
            mgmt,
            &[
                "get",
                "svc",
                "-n",
                "gloo-mesh",
                "gloo-mesh-mgmt-server",
                "-o",
                "jsonpath={.status.loadBalancer.ingress[0].ip}",
            ],
            None,
        )
        .await
        .stdout;
        let ip = ip.trim().to_string();
        if ip.is_empty() {
            Err("pending".to_string())
        } else {
            Ok(ip)
        }
    })
    .await;
    for ctx in agents {
        let relay = format!("glooAgent.relay.serverAddress={relay}:9900");
        let cluster = format!("common.cluster={ctx}");
        let out = helm(
            ctx,
            &[
                "upgrade",
                "--install",
                "gloo-platform",
                &chart,
                "-n",
                "gloo-mesh",
                "--create-namespace",
                "--set",
                "glooAgent.enabled=true",
                "--set",
                &relay,
                "--set",
                &cluster,
                "--wait",
                "--timeout",
                "120s",
            ],
        )
        .await;
        assert!(out.ok, "agent on {ctx}: {}", out.stderr);
    }
}
