//! A test root CA, and the guide's steps done by hand as a person following it would: CRDs, the operator,
//! the ServiceMeshController, east-west gateways, links, the management plane; and waits on what they make.

use super::*;

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
