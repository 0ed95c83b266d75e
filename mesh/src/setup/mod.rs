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

mod link;
mod plan;
mod steps;
#[cfg(test)]
mod tests;

pub use link::*;
pub use plan::*;
pub use steps::*;

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
