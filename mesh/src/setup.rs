//! The setup of a multicluster mesh as steps, per cluster and across clusters (mesh-spec.md §10): root of
//! trust, operator and Gateway API CRDs (at the same time: [`Step::WAVES`]) → control plane → east-west
//! gateway, then linking (manual pairs or automatic peering) and verification. Waits read again after short
//! pauses growing to half a second ([`crate::apply::Pauses`]). Every step is idempotent — server-side apply with the one field
//! manager, skipped when already in place — so a step can be re-run after a failure halfway, and re-running a
//! finished setup changes nothing. Steps report progress through a callback, for jobs to record and stream.
//! Plans (the objects, a server-side dry-run diff against what is live, and the equivalent CLI commands) are
//! computed here too, before anything is applied.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Secret, Service};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ca::RootCa;
use crate::checks::{self, ClusterChecks, Status};
use crate::ids::{ClusterName, NetworkName};
use crate::kubeconfig::Credentials;
use crate::objects::{
    self, DataPlane, EASTWEST_NAME, EASTWEST_NAMESPACE, ISTIO_NAMESPACE, Locality, MeshSpec,
    OPERATOR_NAMESPACE, PeerInfo, SMC_NAME, gateway_resource, smc_resource,
};
use crate::operator;

/// The per-cluster steps, in the order they are shown (they run in [`Step::WAVES`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    RootOfTrust,
    Operator,
    GatewayApi,
    ControlPlane,
    EastWest,
}

impl Step {
    pub const ALL: [Step; 5] = [
        Step::RootOfTrust,
        Step::Operator,
        Step::GatewayApi,
        Step::ControlPlane,
        Step::EastWest,
    ];

    /// The order the steps run in on one cluster: the steps of a wave run at the same time (none needs what
    /// another writes), each wave once the one before is done. The operator's pod starts while the Gateway
    /// API CRDs are written; the control plane needs `cacerts`, the operator and the CRDs (istiod watches
    /// Gateways only when their CRDs exist as it starts); the east-west gateway needs istiod.
    pub const WAVES: [&'static [Step]; 3] = [
        &[Step::RootOfTrust, Step::Operator, Step::GatewayApi],
        &[Step::ControlPlane],
        &[Step::EastWest],
    ];

    pub fn title(self) -> &'static str {
        match self {
            Step::RootOfTrust => "Root of trust",
            Step::Operator => "Gloo Operator",
            Step::GatewayApi => "Gateway API CRDs",
            Step::ControlPlane => "Control plane",
            Step::EastWest => "East-west gateway",
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Step::RootOfTrust => "root-of-trust",
            Step::Operator => "operator",
            Step::GatewayApi => "gateway-api",
            Step::ControlPlane => "control-plane",
            Step::EastWest => "east-west",
        }
    }

    pub fn from_key(key: &str) -> Option<Step> {
        Step::ALL.into_iter().find(|s| s.key() == key)
    }
}

/// How clusters are linked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Peering {
    /// Meshdeck creates a peer gateway for each ordered pair (from holds a gateway to reach to).
    Manual {
        pairs: Vec<(ClusterName, ClusterName)>,
    },
    /// The management plane distributes the peer gateways; Meshdeck sets the flags and verifies (§7).
    Automatic { management: ClusterName },
}

/// Every ordered pair of `clusters` (full mesh).
pub fn full_mesh(clusters: &[ClusterName]) -> Vec<(ClusterName, ClusterName)> {
    let mut pairs = vec![];
    for a in clusters {
        for b in clusters {
            if a != b {
                pairs.push((a.clone(), b.clone()));
            }
        }
    }
    pairs
}

/// Settings shared by every cluster of a setup.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub istio_version: String,
    pub data_plane: DataPlane,
    pub peering: Peering,
    pub operator: operator::Install,
}

/// What one cluster gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSetup {
    pub name: ClusterName,
    pub network: NetworkName,
    /// The ServiceMeshController; `cluster`, `network`, `version` and `dataplaneMode` are filled in from the
    /// setup when left empty.
    pub mesh: MeshSpec,
    /// Extra istiod environment (values.istiod in gloo-extensions-config).
    pub istiod_env: BTreeMap<String, String>,
    /// Further keys of gloo-extensions-config (`stable`, `values.istio-ztunnel`), YAML text each.
    #[serde(default)]
    pub extensions: BTreeMap<String, String>,
    /// `istio.io/expose-istiod-address` on the east-west gateway, for clusters without load balancers.
    pub address_override: Option<String>,
    pub locality: Locality,
    /// This cluster's east-west variant when it differs from the setup's shared choice (§1.2).
    #[serde(default)]
    pub data_plane: Option<DataPlane>,
    /// Where the node's CNI configuration and binaries live, when the platform moved them (§4.3 `beta`).
    #[serde(default)]
    pub cni: objects::CniDirs,
}

impl ClusterSetup {
    pub fn new(name: ClusterName, network: NetworkName) -> Self {
        ClusterSetup {
            name,
            network,
            mesh: MeshSpec::default(),
            istiod_env: BTreeMap::new(),
            extensions: BTreeMap::new(),
            address_override: None,
            locality: Locality::default(),
            data_plane: None,
            cni: objects::CniDirs::default(),
        }
    }

    /// How peers reach this cluster's east-west gateway: its own choice, else the setup's shared one.
    pub fn data_plane(&self, settings: &Settings) -> DataPlane {
        self.data_plane.unwrap_or(settings.data_plane)
    }

    /// The ServiceMeshController as written: multicluster needs the Ambient data plane (peering runs in
    /// istiod's ambient controllers, §2.4), whatever the sidecar choice for workloads.
    pub fn mesh_spec(&self, settings: &Settings) -> MeshSpec {
        let mut m = self.mesh.clone();
        m.cluster.get_or_insert_with(|| self.name.clone());
        m.network.get_or_insert_with(|| self.network.clone());
        m.dataplane_mode = Some("Ambient".into());
        if m.version.is_empty() {
            m.version = settings.istio_version.clone();
        }
        m.install_namespace
            .get_or_insert_with(|| ISTIO_NAMESPACE.into());
        m
    }

    /// The namespace its control plane is installed in (`installNamespace`, §4.1): istiod, ztunnel, `cacerts`.
    pub fn istio_namespace(&self) -> &str {
        self.mesh
            .install_namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(ISTIO_NAMESPACE)
    }

    /// The operator's release for this cluster: the setup's, watching its install namespace too when the
    /// operator would not otherwise (`manager.env.WATCH_NAMESPACES`, §4.1).
    pub fn operator_install(&self, settings: &Settings) -> operator::Install {
        let mut install = settings.operator.clone();
        let ns = self.istio_namespace();
        if !objects::OPERATOR_WATCHED.contains(&ns)
            && !install.watch_namespaces.iter().any(|w| w == ns)
        {
            install.watch_namespaces.push(ns.to_string());
        }
        install
    }
}

/// A cluster Meshdeck can act on.
#[derive(Clone)]
pub struct Target {
    pub name: ClusterName,
    pub client: Client,
    pub creds: Credentials,
}

impl Target {
    /// The namespace the cluster's control plane runs in, as its ServiceMeshController says
    /// ([`objects::istio_namespace`]).
    pub async fn istio_namespace(&self, step: &str) -> Result<String, StepError> {
        crate::apply::retrying(|| objects::istio_namespace(&self.client))
            .await
            .map_err(|e| {
                StepError::kube(
                    &self.name,
                    step,
                    "reading the ServiceMeshController's installNamespace",
                    &e,
                )
            })
    }

    /// A target from one context of a kubeconfig (validated like any user-supplied kubeconfig).
    pub async fn from_kubeconfig(text: &str, context: &str) -> Result<Target, String> {
        let kc = crate::kubeconfig::parse(text).map_err(|e| e.to_string())?;
        let creds = crate::kubeconfig::extract(&kc, context, false).map_err(|e| e.to_string())?;
        let client = crate::connect::client(&creds)
            .await
            .map_err(|p| p.to_string())?;
        let name = ClusterName::new(context).map_err(|e| e.to_string())?;
        Ok(Target {
            name,
            client,
            creds,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Whether anything in the cluster was written.
    pub changed: bool,
    pub summary: String,
}

/// A failed step: which cluster, which step, what happened, what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("cluster {cluster} (step: {step}): {message}. {advice}")]
pub struct StepError {
    pub cluster: String,
    pub step: String,
    pub message: String,
    pub advice: String,
}

fn advice_for(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) if s.code == 403 => {
            "Meshdeck's credentials lack this permission: grant it (the cluster page lists what is missing) and retry"
        }
        kube::Error::Api(s) if s.code == 422 || s.code == 400 => {
            "The cluster refused the object: check the settings of this step and retry"
        }
        kube::Error::Api(_) => {
            "Retry this cluster; if it persists, look at the API server's answer above"
        }
        _ => {
            "The cluster did not answer: check that it is reachable (Clusters → Re-test), then retry this cluster"
        }
    }
}

impl StepError {
    pub(crate) fn new(
        cluster: &ClusterName,
        step: &str,
        message: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        StepError {
            cluster: cluster.to_string(),
            step: step.to_string(),
            message: message.into(),
            advice: advice.into(),
        }
    }

    pub(crate) fn kube(cluster: &ClusterName, step: &str, what: &str, e: &kube::Error) -> Self {
        Self::new(
            cluster,
            step,
            format!("{what}: {}", crate::connect::classify(e)),
            advice_for(e),
        )
    }

    pub(crate) fn apply(cluster: &ClusterName, step: &str, e: &crate::apply::Error) -> Self {
        match e {
            crate::apply::Error::Kube { kind, name, source } => {
                Self::kube(cluster, step, &format!("applying {kind} {name}"), source)
            }
            other => Self::new(
                cluster,
                step,
                other.to_string(),
                "This is a bug in Meshdeck; report it",
            ),
        }
    }
}

pub type StepResult = Result<Outcome, StepError>;

/// Progress while a step runs (what it waits for), for the job's log.
pub type Progress<'a> = &'a (dyn Fn(String) + Send + Sync);

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// Applies objects, reporting whether any changed (a no-op server-side apply keeps the resourceVersion).
async fn apply_all(t: &Target, step: Step, objs: &[Value]) -> Result<bool, StepError> {
    let mut changed = false;
    for obj in objs {
        let before = live_version(&t.client, obj).await;
        let after = crate::apply::apply(&t.client, obj, false)
            .await
            .map_err(|e| StepError::apply(&t.name, step.title(), &e))?;
        changed |= before.as_deref() != after.resource_version().as_deref();
    }
    Ok(changed)
}

pub(crate) async fn live_version(client: &Client, obj: &Value) -> Option<String> {
    get_live(client, obj)
        .await
        .and_then(|o| o.resource_version())
}

fn resource_of(obj: &Value) -> Option<(ApiResource, Option<String>, String)> {
    let api_version = obj["apiVersion"].as_str()?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let kind = obj["kind"].as_str()?;
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
    Some((
        ar,
        obj["metadata"]["namespace"].as_str().map(String::from),
        obj["metadata"]["name"].as_str()?.to_string(),
    ))
}

async fn get_live(client: &Client, obj: &Value) -> Option<DynamicObject> {
    let (ar, ns, name) = resource_of(obj)?;
    let api: Api<DynamicObject> = match ns {
        Some(ns) => Api::namespaced_with(client.clone(), &ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    api.get_opt(&name).await.ok().flatten()
}

/// Runs one step on one cluster.
#[tracing::instrument(skip_all, fields(cluster = %t.name, step = step.key()))]
pub async fn run_step(
    step: Step,
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
    root: &RootCa,
    progress: Progress<'_>,
) -> StepResult {
    match step {
        Step::RootOfTrust => root_of_trust(t, cluster.istio_namespace(), root, progress).await,
        Step::Operator => {
            progress(format!(
                "helm upgrade --install {} (if needed)",
                operator::RELEASE
            ));
            let outcome = operator::ensure(&cluster.operator_install(settings), &t.creds, &t.client)
                .await
                .map_err(|e| {
                    let advice = match &e {
                        operator::Error::Helm(crate::helm::Error::Missing { .. }) => "Install helm on the Meshdeck server, then retry",
                        operator::Error::NeedsAdmin { .. } => "Have an administrator run that command once with cluster-admin credentials, then retry this cluster: the step finds the release deployed and goes on",
                        operator::Error::Kube { source, .. } => advice_for(source),
                        _ => "Look at the message above, fix the chart settings or the cluster, then retry this cluster",
                    };
                    StepError::new(&t.name, step.title(), e.to_string(), advice)
                })?;
            Ok(Outcome {
                changed: outcome != operator::Outcome::Unchanged,
                summary: format!("operator {outcome:?}, ready"),
            })
        }
        Step::GatewayApi => {
            let plan = crate::gateway_api::apply(&t.client).await.map_err(|e| {
                let advice = match &e {
                    crate::gateway_api::Error::Kube { source, .. } => advice_for(source),
                    _ => "Retry this cluster",
                };
                StepError::new(&t.name, step.title(), e.to_string(), advice)
            })?;
            let notes: Vec<String> = plan
                .actions
                .iter()
                .map(|(crd, a)| a.describe(crd))
                .collect();
            Ok(Outcome {
                changed: plan.writes(),
                summary: notes.join("; "),
            })
        }
        Step::ControlPlane => control_plane(t, cluster, settings, progress).await,
        Step::EastWest => eastwest(t, cluster, settings, progress).await,
    }
}

/// The objects a step writes (what the plan shows). The root of trust shows the Secret's shape without keys.
pub fn objects(step: Step, cluster: &ClusterSetup, settings: &Settings) -> Vec<Value> {
    match step {
        Step::RootOfTrust => vec![
            namespace(cluster.istio_namespace()),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cacerts", "namespace": cluster.istio_namespace()},
                   "type": "Opaque", "data": {"ca-cert.pem": "<intermediate for this cluster>", "ca-key.pem": "<its key, generated at apply time>",
                   "root-cert.pem": "<the shared root>", "cert-chain.pem": "<intermediate + root>"}}),
        ],
        Step::Operator => {
            let mut v = vec![namespace(OPERATOR_NAMESPACE)];
            if let Some(mut s) = operator::license_secret(&settings.operator.license) {
                s["stringData"]["license-key"] = json!("<the license key>");
                v.push(s);
            }
            v
        }
        Step::GatewayApi => crate::gateway_api::bundle()
            .map(|crds| {
                crds.iter()
                    .filter_map(|c| serde_json::to_value(c).ok())
                    .collect()
            })
            .unwrap_or_default(),
        Step::ControlPlane => vec![
            objects::extensions_config(
                matches!(settings.peering, Peering::Automatic { .. }),
                &cluster.cni,
                &cluster.istiod_env,
                &cluster.extensions,
            ),
            objects::service_mesh_controller(&cluster.mesh_spec(settings)),
        ],
        Step::EastWest => vec![
            namespace(EASTWEST_NAMESPACE),
            objects::eastwest_gateway(
                &cluster.name,
                &cluster.network,
                cluster.data_plane(settings),
                cluster.address_override.as_deref(),
                &cluster.locality,
            ),
        ],
    }
}

/// The commands a user would run by hand for a step.
pub fn commands(step: Step, cluster: &ClusterSetup, settings: &Settings) -> Vec<String> {
    let ctx = cluster.name.as_str();
    let ns = cluster.istio_namespace();
    match step {
        // Meshdeck issues the intermediate itself (the root's key never leaves the console). By hand, without
        // openssl: smallstep's `step` CLI makes what Istio's Makefile.selfsigned.mk makes (§6.2) — CA:true with
        // pathlen 0 (its intermediate-ca profile), the istiod SAN, 10 years — from the root's files.
        Step::RootOfTrust => vec![
            format!(
                "step certificate create \"Intermediate CA\" {ctx}/ca-cert.pem {ctx}/ca-key.pem --profile intermediate-ca \
                 --ca root-cert.pem --ca-key root-key.pem --san istiod.{ns}.svc --not-after 87600h --no-password --insecure"
            ),
            format!(
                "cp root-cert.pem {ctx}/root-cert.pem && cat {ctx}/ca-cert.pem {ctx}/root-cert.pem > {ctx}/cert-chain.pem"
            ),
            format!("kubectl --context {ctx} create namespace {ns}"),
            format!(
                "kubectl --context {ctx} create secret generic cacerts -n {ns} --from-file={ctx}/ca-cert.pem \
                 --from-file={ctx}/ca-key.pem --from-file={ctx}/root-cert.pem --from-file={ctx}/cert-chain.pem"
            ),
        ],
        Step::Operator => {
            let mut v = vec![];
            if matches!(settings.operator.license, operator::License::Key(_)) {
                v.push(format!(
                    "kubectl --context {ctx} create secret generic {} -n {OPERATOR_NAMESPACE} --from-file=license-key=license.txt",
                    operator::LICENSE_SECRET
                ));
            }
            v.push(operator::command(&cluster.operator_install(settings), ctx));
            v
        }
        Step::GatewayApi => vec![format!(
            "kubectl --context {ctx} apply --server-side -f https://github.com/kubernetes-sigs/gateway-api/releases/download/{}/standard-install.yaml",
            crate::gateway_api::BUNDLE_VERSION
        )],
        Step::ControlPlane => vec![
            format!(
                "kubectl --context {ctx} apply --server-side -f gloo-extensions-config.yaml -f servicemeshcontroller.yaml"
            ),
            format!(
                "kubectl --context {ctx} -n {OPERATOR_NAMESPACE} wait servicemeshcontroller/{SMC_NAME} --for=condition=Ready --timeout=10m"
            ),
        ],
        Step::EastWest => vec![
            format!("kubectl --context {ctx} create namespace {EASTWEST_NAMESPACE}"),
            format!(
                "istioctl multicluster expose --namespace {EASTWEST_NAMESPACE} --context {ctx}"
            ) + if cluster.data_plane(settings) == DataPlane::NodePort {
                " --generate | kubectl annotate -f - --local -o yaml peering.solo.io/data-plane-service-type=NodePort | kubectl apply -f -"
            } else {
                ""
            },
            format!(
                "kubectl --context {ctx} -n {EASTWEST_NAMESPACE} wait gateway/{EASTWEST_NAME} --for=condition=Programmed --timeout=5m"
            ),
        ],
    }
}

/// `t`'s cluster's intermediate CA signed by `root`, valid `days`, made off the async workers (an RSA key
/// takes a second or more).
pub(crate) async fn mint_intermediate(
    t: &Target,
    step: &str,
    root: &RootCa,
    days: i64,
) -> Result<crate::ca::Intermediate, StepError> {
    let (issuer, name) = (root.clone(), t.name.clone());
    tokio::task::spawn_blocking(move || issuer.intermediate(&name, days))
        .await
        .map_err(|e| crate::ca::Error::Generate(e.to_string()))
        .and_then(|r| r)
        .map_err(|e| {
            StepError::new(
                &t.name,
                step,
                e.to_string(),
                "Retry; if it persists, report it",
            )
        })
}

async fn root_of_trust(t: &Target, ns: &str, root: &RootCa, progress: Progress<'_>) -> StepResult {
    let step = Step::RootOfTrust.title();
    let secrets = Api::<Secret>::namespaced(t.client.clone(), ns);
    let existing = match crate::apply::retrying(|| secrets.get_opt("cacerts")).await {
        Ok(s) => s,
        // No namespace yet reads as 404 on the secret, handled by get_opt; anything else is an error.
        Err(e) => {
            return Err(StepError::kube(
                &t.name,
                step,
                &format!("reading Secret {ns}/cacerts"),
                &e,
            ));
        }
    };
    let ours = crate::ca::fingerprint(&root.cert_pem);
    if let Some(s) = &existing {
        let theirs = crate::ca::secret_root_fingerprint(s);
        if theirs == ours && ours.is_some() {
            return Ok(Outcome {
                changed: false,
                summary: "cacerts already holds an intermediate of the shared root".into(),
            });
        }
        return Err(StepError::new(
            &t.name,
            step,
            format!(
                "{ns}/cacerts exists with another root of trust ({})",
                theirs
                    .as_deref()
                    .map_or("unreadable".into(), crate::ca::short)
            ),
            "Meshdeck does not overwrite a root of trust: use that root for every cluster (import it), or delete the \
             Secret if nothing uses it yet, then retry",
        ));
    }
    progress("generating this cluster's intermediate CA".into());
    let intermediate = mint_intermediate(t, step, root, crate::ca::DEFAULT_DAYS).await?;
    apply_all(
        t,
        Step::RootOfTrust,
        &[namespace(ns), intermediate.cacerts_secret(ns)],
    )
    .await?;
    Ok(Outcome {
        changed: true,
        summary: "wrote cacerts (intermediate signed by the shared root)".into(),
    })
}

fn conditions_text(v: &Value) -> String {
    v["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}={}{}",
                        c["type"].as_str().unwrap_or("?"),
                        c["status"].as_str().unwrap_or("?"),
                        c["reason"]
                            .as_str()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_else(|| "no conditions yet".into())
}

fn condition_true(v: &Value, ty: &str) -> bool {
    v["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == ty && c["status"] == "True"))
}

/// Whether the east-west Service peers read (§2.1) declares the variant `cluster` asks for and the address
/// override its live Gateway `gateway` carries — none once an override was cleared (annotations are copied
/// from the Gateway to its Service, §1.2); otherwise what it shows instead.
async fn service_shows(
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
    gateway: &Value,
) -> Result<(), String> {
    let (peer, declared) = PeerInfo::read_with_data_plane(&t.client)
        .await
        .map_err(|e| format!("reading the east-west Service: {e}"))?;
    let wanted = cluster.data_plane(settings);
    let shown = declared.unwrap_or(DataPlane::LoadBalancer);
    if shown != wanted {
        return Err(format!(
            "the east-west Service still declares {shown:?}, the gateway asks for {wanted:?}"
        ));
    }
    const OVERRIDE: &str = "istio.io/expose-istiod-address";
    let asked = gateway["metadata"]["annotations"][OVERRIDE].as_str();
    let services = Api::<Service>::namespaced(t.client.clone(), EASTWEST_NAMESPACE)
        .list(&ListParams::default().labels("istio.io/expose-istiod"))
        .await
        .map_err(|e| format!("reading the east-west Service: {e}"))?;
    let shown: Vec<&str> = services
        .items
        .iter()
        .filter_map(|s| s.annotations().get(OVERRIDE).map(String::as_str))
        .collect();
    match asked {
        Some(a) if peer.address != a => Err(format!(
            "the east-west Service still shows address {}, the override is {a}",
            peer.address
        )),
        None if !shown.is_empty() => Err(format!(
            "the east-west Service still carries the address override {} that was cleared",
            shown.join(", ")
        )),
        _ => Ok(()),
    }
}

/// Whether condition `ty` is True and was written for the object's current generation (a condition without
/// `observedGeneration` counts as current).
fn current_condition_true(v: &Value, ty: &str) -> bool {
    let generation = v["metadata"]["generation"].as_i64().unwrap_or(0);
    v["status"]["conditions"].as_array().is_some_and(|cs| {
        cs.iter().any(|c| {
            c["type"] == ty
                && c["status"] == "True"
                && c["observedGeneration"]
                    .as_i64()
                    .is_none_or(|g| g >= generation)
        })
    })
}

/// How long a step waits for the cluster before failing with what it saw.
pub const WAIT: Duration = Duration::from_secs(600);

async fn control_plane(
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
    progress: Progress<'_>,
) -> StepResult {
    let step = Step::ControlPlane;
    let objs = objects(step, cluster, settings);
    let changed = apply_all(t, step, &objs).await?;
    let api = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        OPERATOR_NAMESPACE,
        &smc_resource(),
    );
    let start = Instant::now();
    let mut pauses = crate::apply::Pauses::for_waits();
    let mut last = String::new();
    loop {
        let smc = crate::apply::retrying(|| api.get(SMC_NAME))
            .await
            .map_err(|e| {
                StepError::kube(
                    &t.name,
                    step.title(),
                    "reading the ServiceMeshController",
                    &e,
                )
            })?;
        let v = serde_json::to_value(&smc).unwrap_or(Value::Null);
        let phase = v["status"]["phase"].as_str().unwrap_or("").to_string();
        let text = format!(
            "phase {}; {}",
            if phase.is_empty() { "—" } else { &phase },
            conditions_text(&v)
        );
        if text != last {
            progress(text.clone());
            last = text.clone();
        }
        // A status written for an older spec (before this apply's change, e.g. a new version) says nothing
        // yet: wait until the operator has seen this generation.
        let generation = v["metadata"]["generation"].as_i64().unwrap_or(0);
        let seen = v["status"]["observedGeneration"].as_i64().or_else(|| {
            v["status"]["conditions"].as_array().and_then(|cs| {
                cs.iter()
                    .find(|c| c["type"] == "Ready")
                    .and_then(|c| c["observedGeneration"].as_i64())
            })
        });
        let fresh = seen.is_none_or(|g| g >= generation);
        if fresh && phase == "SUCCEEDED" && condition_true(&v, "Ready") {
            return Ok(Outcome {
                changed,
                summary: "ServiceMeshController Ready, phase SUCCEEDED".into(),
            });
        }
        if fresh && phase == "FAILED" {
            let failing = v["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["status"] == "False").cloned())
                .unwrap_or(Value::Null);
            return Err(StepError::new(
                &t.name,
                step.title(),
                format!(
                    "the operator reports FAILED: {} {}",
                    failing["reason"].as_str().unwrap_or(""),
                    failing["message"].as_str().unwrap_or("")
                ),
                "Fix the cause in the ServiceMeshController settings (or onConflict: Force to take over an existing Istio), then retry this cluster",
            ));
        }
        if start.elapsed() > WAIT {
            return Err(StepError::new(
                &t.name,
                step.title(),
                format!("not ready after {} s: {text}", WAIT.as_secs()),
                "Look at the operator's log (kubectl -n gloo-mesh logs deploy/gloo-operator), then retry this cluster",
            ));
        }
        pauses.sleep().await;
    }
}

async fn eastwest(
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
    progress: Progress<'_>,
) -> StepResult {
    let step = Step::EastWest;
    let changed = apply_all(t, step, &objects(step, cluster, settings)).await?;
    let api = Api::<DynamicObject>::namespaced_with(
        t.client.clone(),
        EASTWEST_NAMESPACE,
        &gateway_resource(),
    );
    let start = Instant::now();
    let mut pauses = crate::apply::Pauses::for_waits();
    let mut last = String::new();
    loop {
        let gw = crate::apply::retrying(|| api.get(EASTWEST_NAME))
            .await
            .map_err(|e| {
                StepError::kube(&t.name, step.title(), "reading the east-west gateway", &e)
            })?;
        let v = serde_json::to_value(&gw).unwrap_or(Value::Null);
        let addresses: Vec<String> = v["status"]["addresses"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x["value"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let text = conditions_text(&v);
        if text != last {
            progress(text.clone());
            last = text.clone();
        }
        // Programmed for this generation (a status written for an older spec no longer counts, §1.4), and its
        // Service shows the variant and address override just applied: both are annotations, which leave the
        // generation as it is, and peers are linked from the Service (§1.2, §2.1).
        if current_condition_true(&v, "Programmed") && !addresses.is_empty() {
            match service_shows(t, cluster, settings, &v).await {
                Ok(()) => {
                    return Ok(Outcome {
                        changed,
                        summary: format!("Programmed, address {}", addresses.join(", ")),
                    });
                }
                Err(why) if why != last => {
                    progress(why.clone());
                    last = why;
                }
                Err(_) => {}
            }
        }
        if start.elapsed() > WAIT {
            let no_lb = text.contains("AddressNotAssigned");
            return Err(StepError::new(
                &t.name,
                step.title(),
                format!("not programmed after {} s: {text}", WAIT.as_secs()),
                if no_lb {
                    "No load-balancer address was assigned: set an address override for this cluster or choose NodePort peering, then retry"
                } else {
                    "Look at kubectl -n istio-eastwest describe gateway istio-eastwest, then retry this cluster"
                },
            ));
        }
        pauses.sleep().await;
    }
}

/// The peer gateway `from` needs to reach `to`, built from `to`'s live state (§2.1). Its NodePort preference
/// follows the variant `to`'s east-west Service declares; `data_plane` (the variant the setup chose for `to`)
/// applies only when the Service declares none, since a peer gateway asking for the wrong variant never gets
/// its data plane programmed.
pub async fn peer_gateway_for(to: &Target, data_plane: DataPlane) -> Result<Value, StepError> {
    let (peer, live) = PeerInfo::read_with_data_plane(&to.client)
        .await
        .map_err(|e| {
            let advice = match &e {
                objects::PeerError::Kube { source, .. } => advice_for(source),
                _ => "Finish the east-west gateway step in this cluster first",
            };
            StepError::new(&to.name, "Link (reading the peer)", e.to_string(), advice)
        })?;
    Ok(objects::peer_gateway(&peer, live.unwrap_or(data_plane)))
}

/// Links one way: `from` gets a peer gateway to reach `to`.
#[tracing::instrument(skip_all, fields(from = %from.name, to = %to.name))]
pub async fn link(from: &Target, to: &Target, data_plane: DataPlane) -> StepResult {
    let gw = peer_gateway_for(to, data_plane).await?;
    import_peer(from, &gw).await
}

/// The peer gateways that reach `targets` (built from their live state), as one multi-document YAML for the
/// owner of a cluster Meshdeck has no credentials for: they apply it in their cluster (`kubectl apply -f`).
pub async fn export_peers(targets: &[Target], data_plane: DataPlane) -> Result<String, StepError> {
    let mut out = String::new();
    for t in targets {
        let gw = peer_gateway_for(t, data_plane).await?;
        out.push_str(&format!(
            "# reaches cluster {} — apply in the cluster that should reach it\n",
            t.name
        ));
        out.push_str(&serde_yaml::to_string(&gw).unwrap_or_default());
        out.push_str("---\n");
    }
    Ok(out)
}

/// Checks every peer gateway of a (multi-document) YAML someone sent before any is applied.
pub fn validate_peer_gateways(text: &str) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> =
        crate::yaml::documents(text, &crate::yaml::Limits::INPUT).map_err(|e| e.to_string())?;
    let mut out = vec![];
    for (i, v) in docs.into_iter().enumerate() {
        if v.is_null() {
            continue;
        }
        let gw = validate_peer_value(v).map_err(|e| format!("document {}: {e}", i + 1))?;
        out.push(gw);
    }
    if out.is_empty() {
        return Err("no peer gateway in it: paste the YAML the cluster's owner sent (one or more istio-remote Gateways)".into());
    }
    Ok(out)
}

/// Checks a peer gateway someone sent (the export/import path) before it is applied.
pub fn validate_peer_gateway(text: &str) -> Result<Value, String> {
    let v: Value =
        crate::yaml::from_str(text, &crate::yaml::Limits::INPUT).map_err(|e| e.to_string())?;
    validate_peer_value(v)
}

fn validate_peer_value(v: Value) -> Result<Value, String> {
    if v["apiVersion"] != "gateway.networking.k8s.io/v1" || v["kind"] != "Gateway" {
        return Err("expected a gateway.networking.k8s.io/v1 Gateway".into());
    }
    if v["spec"]["gatewayClassName"] != "istio-remote" {
        return Err("the gateway's class must be istio-remote".into());
    }
    let name = v["metadata"]["name"].as_str().unwrap_or("");
    let cluster = v["metadata"]["labels"]["topology.istio.io/cluster"]
        .as_str()
        .unwrap_or("");
    if cluster.is_empty() || name != format!("istio-remote-peer-{cluster}") {
        return Err("the gateway must be named istio-remote-peer-<cluster> and carry the topology.istio.io/cluster label".into());
    }
    crate::ids::check_dns1123_label("cluster", cluster).map_err(|e| e.to_string())?;
    if v["metadata"]["labels"]["topology.istio.io/network"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        return Err("the topology.istio.io/network label is missing".into());
    }
    if v["metadata"]["annotations"]["gateway.istio.io/trust-domain"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        return Err("the gateway.istio.io/trust-domain annotation is missing".into());
    }
    let addresses = v["spec"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if addresses.is_empty()
        || addresses
            .iter()
            .any(|a| a["value"].as_str().unwrap_or("").is_empty())
    {
        return Err(
            "spec.addresses is empty: the peer's east-west gateway had no address yet".into(),
        );
    }
    let listeners: Vec<&str> = v["spec"]["listeners"]
        .as_array()
        .map(|l| l.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    if !listeners.contains(&"cross-network") || !listeners.contains(&"xds-tls") {
        return Err("the listeners cross-network and xds-tls are required".into());
    }
    if v["metadata"]["namespace"]
        .as_str()
        .is_some_and(|n| n != EASTWEST_NAMESPACE)
    {
        return Err(format!(
            "the gateway belongs in namespace {EASTWEST_NAMESPACE}"
        ));
    }
    let mut v = v;
    v["metadata"]["namespace"] = json!(EASTWEST_NAMESPACE);
    Ok(v)
}

/// The peer a (validated) peer gateway points at; refused when it is `from` itself.
fn peer_of(from: &Target, gw: &Value) -> Result<String, StepError> {
    let peer = gw["metadata"]["labels"]["topology.istio.io/cluster"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    if peer == from.name.as_str() {
        return Err(StepError::new(
            &from.name,
            "Link",
            "the peer gateway points at this cluster itself",
            "Import it into the other cluster",
        ));
    }
    Ok(peer)
}

/// The resourceVersions of the gateways `from` holds in istio-eastwest, by name: one list before linking
/// many peers, so that each link is one write ([`link_peer`]).
pub async fn gateway_versions(from: &Target) -> Result<BTreeMap<String, String>, StepError> {
    let api = Api::<DynamicObject>::namespaced_with(
        from.client.clone(),
        EASTWEST_NAMESPACE,
        &gateway_resource(),
    );
    let lp = ListParams::default();
    let list = crate::apply::retrying(|| api.list_metadata(&lp))
        .await
        .map_err(|e| {
            StepError::kube(
                &from.name,
                "Link",
                &format!("listing the gateways in {EASTWEST_NAMESPACE}"),
                &e,
            )
        })?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|g| Some((g.metadata.name?, g.metadata.resource_version?)))
        .collect())
}

/// Applies a (validated) peer gateway in `from` as one write (with its namespace only when that is gone),
/// inside a job whose clusters have the Gateway API served: `before` is the gateway's resourceVersion listed before
/// ([`gateway_versions`]; None when it did not exist), to tell whether the write changed it.
pub async fn link_peer(from: &Target, gw: &Value, before: Option<&str>) -> StepResult {
    let peer = peer_of(from, gw)?;
    let after = match crate::apply::apply_known(&from.client, &gateway_resource(), gw).await {
        Ok(after) => after,
        // istio-eastwest is gone (deleted by hand from a member): made again with the gateway.
        Err(crate::apply::Error::Kube {
            source: kube::Error::Api(s),
            ..
        }) if s.code == 404 => return import_peer(from, gw).await,
        Err(e) => return Err(StepError::apply(&from.name, &format!("Link to {peer}"), &e)),
    };
    Ok(Outcome {
        changed: before != after.resource_version().as_deref(),
        summary: format!("peer gateway istio-remote-peer-{peer} in place"),
    })
}

/// Applies a (validated) peer gateway in `from`, with its namespace (a link made on its own).
pub async fn import_peer(from: &Target, gw: &Value) -> StepResult {
    let peer = peer_of(from, gw)?;
    let changed = apply_all(
        from,
        Step::EastWest,
        &[namespace(EASTWEST_NAMESPACE), gw.clone()],
    )
    .await
    .map_err(|mut e| {
        e.step = format!("Link to {peer}");
        e
    })?;
    Ok(Outcome {
        changed,
        summary: format!("peer gateway istio-remote-peer-{peer} in place"),
    })
}

/// Removes the peer gateway `from` holds for `to`, only if Meshdeck created it.
pub async fn unlink(from: &Target, to: &ClusterName) -> StepResult {
    let api = Api::<DynamicObject>::namespaced_with(
        from.client.clone(),
        EASTWEST_NAMESPACE,
        &gateway_resource(),
    );
    let name = format!("istio-remote-peer-{to}");
    let step = format!("Unlink from {to}");
    let Some(gw) = api
        .get_opt(&name)
        .await
        .map_err(|e| StepError::kube(&from.name, &step, "reading the peer gateway", &e))?
    else {
        return Ok(Outcome {
            changed: false,
            summary: format!("no {name}"),
        });
    };
    let ours = gw
        .managed_fields()
        .iter()
        .any(|m| m.manager.as_deref() == Some(crate::FIELD_MANAGER));
    if !ours {
        return Err(StepError::new(
            &from.name,
            &step,
            format!("{name} was not created by Meshdeck"),
            "Meshdeck only removes what it linked; remove it by hand if you mean to",
        ));
    }
    api.delete(&name, &DeleteParams::default())
        .await
        .map_err(|e| StepError::kube(&from.name, &step, "deleting the peer gateway", &e))?;
    Ok(Outcome {
        changed: true,
        summary: format!("removed {name}"),
    })
}

/// Automatic peering: every cluster holds a peer gateway for every other one (distributed by the
/// management plane). Returns the missing (holder, peer) pairs.
pub async fn missing_automatic_peers(
    targets: &[Target],
) -> Result<Vec<(ClusterName, ClusterName)>, StepError> {
    let mut missing = vec![];
    for t in targets {
        let api = Api::<DynamicObject>::namespaced_with(
            t.client.clone(),
            EASTWEST_NAMESPACE,
            &gateway_resource(),
        );
        let names: Vec<String> = api
            .list(&Default::default())
            .await
            .map_err(|e| StepError::kube(&t.name, "Automatic peering", "listing gateways", &e))?
            .items
            .iter()
            .filter(|g| g.data["spec"]["gatewayClassName"] == "istio-remote")
            .map(|g| g.name_any())
            .collect();
        for other in targets.iter().filter(|o| o.name != t.name) {
            if !names.contains(&format!("istio-remote-peer-{}", other.name)) {
                missing.push((t.name.clone(), other.name.clone()));
            }
        }
    }
    Ok(missing)
}

/// The clusters of a setup that should hold peer gateways: the `from` side of manual pairs; every cluster
/// with automatic peering when there are several.
pub fn holders(
    clusters: &[ClusterName],
    peering: &Peering,
) -> std::collections::BTreeSet<ClusterName> {
    match peering {
        Peering::Manual { pairs } => pairs.iter().map(|(from, _)| from.clone()).collect(),
        Peering::Automatic { .. } if clusters.len() > 1 => clusters.iter().cloned().collect(),
        Peering::Automatic { .. } => Default::default(),
    }
}

/// Runs the checks until every cluster passes or `timeout` passes; `progress` gets a line per round that
/// changed. Returns the last results. Clusters not in `holders` are not meant to hold peer gateways (see
/// [`holders`]): holding none passes for them.
pub async fn verify(
    targets: &[Target],
    holders: &std::collections::BTreeSet<ClusterName>,
    timeout: Duration,
    progress: Progress<'_>,
) -> Vec<ClusterChecks> {
    let start = Instant::now();
    // Each round reads every cluster: 250 ms at first (the peer gateways just written are usually connected
    // within it), then up to a second.
    let mut pauses = crate::apply::Pauses::new(Duration::from_millis(250), Duration::from_secs(1));
    let mut last = String::new();
    loop {
        let mut results = checks::check_all(
            targets
                .iter()
                .map(|t| (t.name.clone(), t.client.clone()))
                .collect(),
        )
        .await;
        for c in results.iter_mut().filter(|c| !holders.contains(&c.cluster)) {
            c.expect_no_peers();
        }
        let summary: Vec<String> = results
            .iter()
            .map(|c| format!("{}: {:?}", c.cluster, c.worst()))
            .collect();
        let summary = summary.join(", ");
        if summary != last {
            progress(summary.clone());
            last = summary;
        }
        if results.iter().all(|c| c.worst() == Status::Pass) || start.elapsed() > timeout {
            return results;
        }
        pauses.sleep().await;
    }
}

/// One step of a cluster's plan: what it writes, compared with the cluster, and the commands by hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub step: Step,
    pub objects: Vec<ObjectChange>,
    pub commands: Vec<String>,
}

/// The plan of one cluster: every step, each object diffed against the cluster (server-side dry run).
pub async fn plan_cluster(
    t: &Target,
    cluster: &ClusterSetup,
    settings: &Settings,
) -> Vec<PlannedStep> {
    let mut out = vec![];
    for step in Step::ALL {
        let mut objects_out = vec![];
        for obj in objects(step, cluster, settings) {
            objects_out.push(diff_object(&t.client, &obj).await);
        }
        out.push(PlannedStep {
            step,
            objects: objects_out,
            commands: commands(step, cluster, settings),
        });
    }
    out
}

/// One object of a plan, compared with what the cluster holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectChange {
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
    pub yaml: String,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Change {
    Create,
    Update {
        diff: String,
    },
    Unchanged,
    /// Not compared (the object holds generated keys, or the cluster could not be asked).
    Unknown {
        reason: String,
    },
}

/// Strips what the server adds so live and desired objects compare on content.
fn normalize(mut v: Value) -> Value {
    if let Some(m) = v["metadata"].as_object_mut() {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            m.remove(k);
        }
        if let Some(a) = m.get_mut("annotations").and_then(Value::as_object_mut) {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
            if a.is_empty() {
                m.remove("annotations");
            }
        }
    }
    if let Some(o) = v.as_object_mut() {
        o.remove("status");
    }
    v
}

/// Compares one planned object with the cluster: a server-side dry-run apply shows what the object would
/// become, diffed against what is live now.
pub async fn diff_object(client: &Client, obj: &Value) -> ObjectChange {
    let yaml = serde_yaml::to_string(obj).unwrap_or_default();
    let meta = &obj["metadata"];
    let mut change = ObjectChange {
        kind: obj["kind"].as_str().unwrap_or("").to_string(),
        namespace: meta["namespace"].as_str().map(String::from),
        name: meta["name"].as_str().unwrap_or("").to_string(),
        yaml,
        change: Change::Unchanged,
    };
    if obj.to_string().contains("<") && change.kind == "Secret" {
        change.change = Change::Unknown {
            reason: "holds keys generated at apply time".into(),
        };
        return change;
    }
    let live = get_live(client, obj).await;
    let Some(live) = live else {
        change.change = Change::Create;
        return change;
    };
    match crate::apply::apply(client, obj, true).await {
        Ok(after) => {
            let before = normalize(serde_json::to_value(&live).unwrap_or(Value::Null));
            let after = normalize(serde_json::to_value(&after).unwrap_or(Value::Null));
            if before == after {
                change.change = Change::Unchanged;
            } else {
                let a = serde_yaml::to_string(&before).unwrap_or_default();
                let b = serde_yaml::to_string(&after).unwrap_or_default();
                let diff = similar::TextDiff::from_lines(&a, &b)
                    .unified_diff()
                    .context_radius(3)
                    .header("live", "after apply")
                    .to_string();
                change.change = Change::Update { diff };
            }
        }
        Err(e) => {
            change.change = Change::Unknown {
                reason: format!("the dry run failed: {e}"),
            }
        }
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> ClusterName {
        ClusterName::new(s).expect("name")
    }

    #[test]
    fn every_step_runs_once_and_after_what_it_needs() {
        let wave_of = |step: Step| {
            let waves: Vec<usize> = (0..Step::WAVES.len())
                .filter(|&w| Step::WAVES[w].contains(&step))
                .collect();
            assert_eq!(waves.len(), 1, "{step:?} is in exactly one wave");
            waves[0]
        };
        for step in Step::ALL {
            wave_of(step);
        }
        assert_eq!(
            Step::WAVES.iter().map(|w| w.len()).sum::<usize>(),
            Step::ALL.len()
        );
        // The control plane needs cacerts, the operator (its CRD) and the Gateway API CRDs (istiod watches
        // Gateways only when their CRDs exist as it starts); the east-west gateway needs istiod.
        for needed in [Step::RootOfTrust, Step::Operator, Step::GatewayApi] {
            assert!(wave_of(needed) < wave_of(Step::ControlPlane), "{needed:?}");
        }
        assert!(wave_of(Step::ControlPlane) < wave_of(Step::EastWest));
        // Independent steps share the first wave: the operator's pod starts while the CRDs are written.
        assert_eq!(wave_of(Step::Operator), wave_of(Step::GatewayApi));
    }

    #[test]
    fn the_clusters_meant_to_hold_peer_gateways_follow_the_linking() {
        let all = [name("a"), name("b"), name("c")];
        let one_way = Peering::Manual {
            pairs: vec![(name("a"), name("b")), (name("a"), name("c"))],
        };
        assert_eq!(
            holders(&all, &one_way).into_iter().collect::<Vec<_>>(),
            [name("a")]
        );
        let full = Peering::Manual {
            pairs: full_mesh(&all),
        };
        assert_eq!(holders(&all, &full).len(), 3);
        let auto = Peering::Automatic {
            management: name("a"),
        };
        assert_eq!(holders(&all, &auto).len(), 3);
        assert!(
            holders(&all[..1], &auto).is_empty(),
            "alone: nothing to peer with"
        );
    }

    fn settings() -> Settings {
        Settings {
            istio_version: "1.28.1-patch0".into(),
            data_plane: DataPlane::LoadBalancer,
            peering: Peering::Manual { pairs: vec![] },
            operator: operator::Install {
                chart: operator::Chart::default(),
                license: operator::License::Key("k".into()),
                watch_namespaces: vec![],
                helm: "helm".into(),
            },
        }
    }

    #[test]
    fn a_full_mesh_of_n_clusters_has_n_times_n_minus_one_pairs() {
        let cs: Vec<ClusterName> = ["a", "b", "c", "d"].iter().map(|s| name(s)).collect();
        let pairs = full_mesh(&cs);
        assert_eq!(pairs.len(), 12);
        assert!(pairs.iter().all(|(a, b)| a != b));
    }

    #[test]
    fn the_mesh_spec_is_always_ambient_and_filled_from_the_setup() {
        let mut c = ClusterSetup::new(name("c1"), NetworkName::new("net1").expect("net"));
        c.mesh.dataplane_mode = Some("Sidecar".into());
        let m = c.mesh_spec(&settings());
        assert_eq!(m.dataplane_mode.as_deref(), Some("Ambient"));
        assert_eq!(m.cluster.as_ref().map(|c| c.as_str()), Some("c1"));
        assert_eq!(m.network.as_ref().map(|c| c.as_str()), Some("net1"));
        assert_eq!(m.version, "1.28.1-patch0");
        assert_eq!(m.install_namespace.as_deref(), Some("istio-system"));
    }

    #[test]
    fn plan_objects_never_carry_keys() {
        let c = ClusterSetup::new(name("c1"), NetworkName::new("c1").expect("net"));
        for step in Step::ALL {
            let text = serde_json::to_string(&objects(step, &c, &settings())).expect("json");
            assert!(!text.contains("PRIVATE KEY"), "{step:?}");
            assert!(!text.contains("\"k\""), "{step:?} leaks the license");
        }
        assert_eq!(objects(Step::GatewayApi, &c, &settings()).len(), 6);
    }

    #[test]
    fn commands_name_the_cluster_context() {
        let c = ClusterSetup::new(name("c7"), NetworkName::new("c7").expect("net"));
        for step in Step::ALL {
            for cmd in commands(step, &c, &settings()) {
                assert!(cmd.contains("c7"), "{step:?}: {cmd}");
            }
        }
    }

    #[test]
    fn the_root_of_trust_by_hand_needs_no_openssl() {
        let c = ClusterSetup::new(name("c7"), NetworkName::new("c7").expect("net"));
        let cmds = commands(Step::RootOfTrust, &c, &settings()).join("\n");
        assert!(!cmds.contains("openssl"), "{cmds}");
        assert!(
            cmds.contains("step certificate create \"Intermediate CA\" c7/ca-cert.pem c7/ca-key.pem --profile intermediate-ca")
                && cmds.contains("--san istiod.istio-system.svc"),
            "{cmds}"
        );
        assert!(
            cmds.contains("cat c7/ca-cert.pem c7/root-cert.pem > c7/cert-chain.pem"),
            "cert-chain.pem is the intermediate then the root (§6.2): {cmds}"
        );
    }

    #[test]
    fn imported_peer_gateways_are_validated() {
        let ok = objects::peer_gateway(
            &PeerInfo {
                cluster: "c2".into(),
                network: "c2".into(),
                address_type: "IPAddress",
                address: "192.0.2.10".into(),
                trust_domain: "c2".into(),
                service_account: "istio-eastwest".into(),
                locality: Locality::default(),
            },
            DataPlane::LoadBalancer,
        );
        let text = serde_yaml::to_string(&ok).expect("yaml");
        assert!(validate_peer_gateway(&text).is_ok());
        let bad = text.replace("istio-remote\n", "istio-eastwest\n");
        assert!(
            validate_peer_gateway(&bad)
                .expect_err("class")
                .contains("istio-remote")
        );
        let no_addr = text.replace("192.0.2.10", "''");
        assert!(
            validate_peer_gateway(&no_addr)
                .expect_err("address")
                .contains("addresses")
        );
        assert!(
            validate_peer_gateway("kind: [")
                .expect_err("yaml")
                .contains("YAML")
        );
        let wrong_name = text.replace("istio-remote-peer-c2", "peer-c2");
        assert!(validate_peer_gateway(&wrong_name).is_err());

        // Several documents (what an export holds): all are checked, and a bad one is named by position.
        let two = format!("# a comment\n{text}---\n{}---\n", text.replace("c2", "c4"));
        let gws = validate_peer_gateways(&two).expect("two valid documents");
        assert_eq!(gws.len(), 2);
        assert_eq!(gws[1]["metadata"]["name"], "istio-remote-peer-c4");
        let second_bad = format!("{text}---\n{no_addr}");
        assert!(
            validate_peer_gateways(&second_bad)
                .expect_err("second")
                .starts_with("document 2: spec.addresses is empty")
        );
        assert!(
            validate_peer_gateways("---\n")
                .expect_err("empty")
                .contains("no peer gateway")
        );
    }

    #[test]
    fn step_keys_round_trip() {
        for s in Step::ALL {
            assert_eq!(Step::from_key(s.key()), Some(s));
        }
    }

    #[test]
    fn normalizing_drops_server_fields() {
        let v = json!({"metadata": {"name": "x", "uid": "u", "resourceVersion": "1", "managedFields": []}, "status": {}, "spec": {"a": 1}});
        assert_eq!(
            normalize(v),
            json!({"metadata": {"name": "x"}, "spec": {"a": 1}})
        );
    }

    #[test]
    fn a_condition_written_for_an_older_generation_does_not_count() {
        let gw = |generation: i64, observed: Option<i64>| {
            let mut c = json!({"type": "Programmed", "status": "True"});
            if let Some(o) = observed {
                c["observedGeneration"] = json!(o);
            }
            json!({"metadata": {"generation": generation}, "status": {"conditions": [c]}})
        };
        assert!(current_condition_true(&gw(2, Some(2)), "Programmed"));
        assert!(!current_condition_true(&gw(3, Some(2)), "Programmed"));
        assert!(current_condition_true(&gw(3, None), "Programmed"));
        assert!(!current_condition_true(&gw(1, Some(1)), "Accepted"));
    }
}
