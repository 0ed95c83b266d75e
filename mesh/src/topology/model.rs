//! What the server's caches hold about each cluster ([`ClusterSnapshot`] and the states in it, read from
//! the live objects) and what the topology should be ([`Expectation`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::ids::graph::{ConditionView, EastWestKind};
use crate::ids::{ClusterName, istio_version};

/// The label that makes a Service (or every Service of a namespace) available across the linked clusters,
/// as `<name>.<namespace>.mesh.internal` (Solo's multicluster guides; `PEERING_DISCOVERY_SUFFIX`, §2.4).
pub const SERVICE_SCOPE_LABEL: &str = "solo.io/service-scope";
/// The domain of exported services' mesh-wide names (`PEERING_DISCOVERY_SUFFIX`'s default, §2.4).
pub const MESH_DOMAIN: &str = "mesh.internal";
const CLUSTER_LABEL: &str = "topology.istio.io/cluster";
const NETWORK_LABEL: &str = "topology.istio.io/network";

/// The conditions the Solo peering controller writes on a peer gateway (§2.3); the same list as the Peers
/// check's, so the Topology and Checks pages agree.
pub(super) const PEER_CONDITIONS: [&str; 3] = [
    "gloo.solo.io/PeerConnected",
    "gloo.solo.io/PeeringSucceeded",
    "gloo.solo.io/PeerDataPlaneProgrammed",
];

/// Ready and wanted pods of a Deployment (`readyReplicas`/`replicas`) or DaemonSet
/// (`numberReady`/`desiredNumberScheduled`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadState {
    pub desired: u32,
    pub ready: u32,
}

/// The ServiceMeshController (§4.2).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SmcState {
    /// `status.phase`; done is `SUCCEEDED` with `Ready=True`.
    pub phase: Option<String>,
    pub conditions: Vec<ConditionView>,
    /// `spec.version`, e.g. `1.28.1-patch0`.
    pub version: Option<String>,
    /// `spec.installNamespace`, where istiod runs (None: istio-system, §4.1).
    pub install_namespace: Option<String>,
}

impl SmcState {
    /// Reads a ServiceMeshController object.
    pub fn from_object(smc: &DynamicObject) -> Self {
        SmcState {
            phase: smc.data["status"]["phase"].as_str().map(String::from),
            conditions: conditions_of(&smc.data),
            version: smc.data["spec"]["version"].as_str().map(String::from),
            install_namespace: smc.data["spec"]["installNamespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .map(String::from),
        }
    }
}

/// The istiod Deployment (`app=istiod` in istio-system).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IstiodState {
    pub pods: WorkloadState,
    /// Its `istio.io/rev` label (`gloo` when the operator installs it).
    pub revision: Option<String>,
}

/// The east-west Gateway (class `istio-eastwest`, §1).
#[derive(Clone, Debug, PartialEq)]
pub struct EastWestState {
    /// `peering.solo.io/data-plane-service-type` (§1.2).
    pub kind: EastWestKind,
    /// `status.addresses[].value`.
    pub addresses: Vec<String>,
    /// `istio.io/expose-istiod-address`, which `link` prefers to the status address (§1.3).
    pub address_override: Option<String>,
    /// The `Programmed` condition, when reported.
    pub programmed: Option<ConditionView>,
    /// `topology.istio.io/cluster` (needed for NodePort and automatic peering, §9 P11).
    pub cluster_label: Option<String>,
}

impl EastWestState {
    /// Reads an east-west Gateway; `None` for a Gateway of another class.
    pub fn from_gateway(g: &DynamicObject) -> Option<Self> {
        if g.data["spec"]["gatewayClassName"] != "istio-eastwest" {
            return None;
        }
        let annotations = g.annotations();
        Some(EastWestState {
            kind: match annotations.get("peering.solo.io/data-plane-service-type") {
                Some(v) if v.eq_ignore_ascii_case("nodeport") => EastWestKind::NodePort,
                _ => EastWestKind::LoadBalancer,
            },
            addresses: g.data["status"]["addresses"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|a| a["value"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            address_override: annotations
                .get("istio.io/expose-istiod-address")
                .filter(|a| !a.is_empty())
                .cloned(),
            programmed: conditions_of(&g.data)
                .into_iter()
                .find(|c| c.type_ == "Programmed"),
            cluster_label: g.labels().get(CLUSTER_LABEL).cloned(),
        })
    }

    /// The addresses peers may dial: the override alone when set, else the status addresses.
    pub(super) fn advertised(&self) -> Vec<&str> {
        match &self.address_override {
            Some(a) => vec![a.as_str()],
            None => self.addresses.iter().map(String::as_str).collect(),
        }
    }
}

/// A remote peer Gateway (class `istio-remote`) held by a cluster (§2.1, §2.3).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PeerGatewayState {
    pub name: String,
    /// `topology.istio.io/cluster`: the peer (absent on gateways made before July 2025 or by hand).
    pub cluster_label: Option<String>,
    /// `topology.istio.io/network`: the peer's network, and its cluster when the cluster label is absent.
    pub network_label: Option<String>,
    /// `gateway.istio.io/trust-domain`.
    pub trust_domain: Option<String>,
    /// `spec.addresses[0].value`.
    pub address: Option<String>,
    /// `status.conditions`, shared with the links of the graphs computed from it.
    pub conditions: Arc<[ConditionView]>,
}

impl PeerGatewayState {
    /// Reads a peer Gateway; `None` for a Gateway of another class.
    pub fn from_gateway(g: &DynamicObject) -> Option<Self> {
        if g.data["spec"]["gatewayClassName"] != "istio-remote" {
            return None;
        }
        Some(PeerGatewayState {
            name: g.name_any(),
            cluster_label: g.labels().get(CLUSTER_LABEL).cloned(),
            network_label: g.labels().get(NETWORK_LABEL).cloned(),
            trust_domain: g
                .annotations()
                .get("gateway.istio.io/trust-domain")
                .cloned(),
            address: g.data["spec"]["addresses"][0]["value"]
                .as_str()
                .map(String::from),
            conditions: conditions_of(&g.data).into(),
        })
    }
}

fn conditions_of(data: &Value) -> Vec<ConditionView> {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    data["status"]["conditions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| ConditionView {
                    type_: text(&c["type"]),
                    status: text(&c["status"]),
                    reason: text(&c["reason"]),
                    message: text(&c["message"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What istiod's `/debug/license` said (§3 check 2).
#[derive(Clone, Debug, PartialEq)]
pub enum LicenseState {
    Valid,
    /// Istio before 1.27 has no license endpoint.
    NotCheckable,
    Invalid(String),
    /// Not read (yet), with why.
    Unknown(String),
}

/// A Service, with its labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceState {
    pub name: String,
    pub labels: BTreeMap<String, String>,
}

/// A namespace, with its labels and Services.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NamespaceState {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub services: Vec<ServiceState>,
}

impl NamespaceState {
    /// Its workloads join the mesh: sidecar injection (`istio-injection=enabled` or a revision label) or
    /// ambient mode.
    pub fn is_meshed(&self) -> bool {
        let l = |k: &str| self.labels.get(k).map(String::as_str);
        l("istio-injection") == Some("enabled")
            || l("istio.io/rev").is_some_and(|r| !r.is_empty())
            || l("istio.io/dataplane-mode") == Some("ambient")
    }

    /// Whether a Service of this namespace is made available across the clusters: its own
    /// `solo.io/service-scope` label decides, else the namespace's (`global` or `global-only`).
    pub fn exports(&self, service: &ServiceState) -> bool {
        let global = |v: &String| matches!(v.as_str(), "global" | "global-only");
        match service.labels.get(SERVICE_SCOPE_LABEL) {
            Some(v) => global(v),
            None => self.labels.get(SERVICE_SCOPE_LABEL).is_some_and(global),
        }
    }
}

/// An object the Topology page's side panel shows, read on demand (never a Secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// The ServiceMeshController.
    Smc,
    /// The east-west Gateway.
    EastWestGateway,
    /// The remote peer Gateway for this cluster.
    PeerGateway(ClusterName),
}

impl Shown {
    fn locate(&self) -> (kube::api::ApiResource, &'static str, String) {
        use crate::objects::{
            EASTWEST_NAME, EASTWEST_NAMESPACE, OPERATOR_NAMESPACE, SMC_NAME, gateway_resource,
            smc_resource,
        };
        match self {
            Shown::Smc => (smc_resource(), OPERATOR_NAMESPACE, SMC_NAME.into()),
            Shown::EastWestGateway => {
                (gateway_resource(), EASTWEST_NAMESPACE, EASTWEST_NAME.into())
            }
            Shown::PeerGateway(peer) => (
                gateway_resource(),
                EASTWEST_NAMESPACE,
                format!("istio-remote-peer-{peer}"),
            ),
        }
    }

    /// e.g. `Gateway istio-eastwest/istio-remote-peer-c2`.
    pub fn title(&self) -> String {
        let (r, ns, name) = self.locate();
        format!("{} {ns}/{name}", r.kind)
    }

    /// The object as YAML (status included; managed fields and the last-applied annotation left out), or
    /// what went wrong, naming the object and saying what to do.
    pub async fn read_yaml(&self, client: &kube::Client) -> Result<String, String> {
        let (resource, namespace, name) = self.locate();
        let api: kube::Api<DynamicObject> =
            kube::Api::namespaced_with(client.clone(), namespace, &resource);
        match api.get_opt(&name).await {
            Ok(Some(mut o)) => {
                o.metadata.managed_fields = None;
                if let Some(a) = o.metadata.annotations.as_mut() {
                    a.remove("kubectl.kubernetes.io/last-applied-configuration");
                }
                serde_yaml::to_string(&o).map_err(|e| e.to_string())
            }
            Ok(None) => Err(format!("there is no {}", self.title())),
            Err(e) => Err(format!(
                "reading {}: {e}; check that the cluster is reachable (Clusters → Re-test)",
                self.title()
            )),
        }
    }
}

/// What the server's caches hold about one cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSnapshot {
    pub name: ClusterName,
    /// The error of its watches when it cannot be reached; the rest is then the state last seen.
    pub unreachable: Option<String>,
    /// The `topology.istio.io/network` label of istio-system.
    pub network: Option<String>,
    /// `topology.kubernetes.io/region`, when all its nodes share one.
    pub region: Option<String>,
    /// The `gloo-operator` Deployment in gloo-mesh.
    pub operator: Option<WorkloadState>,
    pub smc: Option<SmcState>,
    pub istiod: Option<IstiodState>,
    pub ztunnel: Option<WorkloadState>,
    /// The `istio-cni-node` DaemonSet.
    pub cni: Option<WorkloadState>,
    pub eastwest: Option<EastWestState>,
    pub peers: Vec<PeerGatewayState>,
    /// SHA-256 of `root-cert.pem` in `cacerts` ([`crate::ca::secret_root_fingerprint`]).
    pub root_fingerprint: Option<String>,
    /// `trustDomain` of the mesh ConfigMap (`istio-gloo`, else `istio`).
    pub trust_domain: Option<String>,
    pub license: LicenseState,
    /// What the last drift comparison found (the console compares on request): the objects that differed from
    /// what Meshdeck applied, by kind and name; empty when none did. None until compared.
    pub drift: Option<Vec<String>>,
    pub namespaces: Vec<NamespaceState>,
}

impl ClusterSnapshot {
    /// A reachable cluster of which nothing is known yet.
    pub fn new(name: ClusterName) -> Self {
        ClusterSnapshot {
            name,
            unreachable: None,
            network: None,
            region: None,
            operator: None,
            smc: None,
            istiod: None,
            ztunnel: None,
            cni: None,
            eastwest: None,
            peers: vec![],
            root_fingerprint: None,
            trust_domain: None,
            license: LicenseState::Unknown("not read yet".into()),
            drift: None,
            namespaces: vec![],
        }
    }

    pub(super) fn minor(&self) -> Option<(u64, u64)> {
        let v = istio_version(self.smc.as_ref()?.version.as_deref()?)?;
        Some((v.0, v.1))
    }

    pub(super) fn version(&self) -> Option<&str> {
        self.smc.as_ref()?.version.as_deref()
    }
}

/// Links decided on purpose, by the cluster that holds the peer gateway, then the peer: whether the first is
/// meant to hold a peer gateway for the second. Nested so a pair is looked up without building a key.
pub type Chosen = BTreeMap<ClusterName, BTreeMap<ClusterName, bool>>;

/// What the topology should be, beyond what exists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Expectation {
    /// Clusters expected to be linked both ways with each other. Empty expects no particular links.
    pub full_mesh: BTreeSet<ClusterName>,
    /// Ordered pairs decided on purpose (the linking chosen in a setup): `(from, to)` → whether `from` is meant
    /// to hold a peer gateway for `to`. A decision overrides `full_mesh` for its pair, so links a team left out
    /// on purpose (selected pairs, one-way) are not reported as missing.
    /// Shared, so the server hands the same decisions to every recomputation without copying them.
    pub chosen: std::sync::Arc<Chosen>,
}

impl Expectation {
    /// Every cluster of the snapshots is expected in one full mesh.
    pub fn full_mesh_of(snapshots: &[ClusterSnapshot]) -> Self {
        Expectation {
            full_mesh: snapshots.iter().map(|s| s.name.clone()).collect(),
            chosen: Default::default(),
        }
    }

    /// Records a linking chosen for `clusters`: every ordered pair among them is decided, meant to be linked
    /// when `linked` says so. Later calls override earlier ones for the pairs they share.
    pub fn choose(
        &mut self,
        clusters: &[ClusterName],
        linked: impl Fn(&ClusterName, &ClusterName) -> bool,
    ) {
        self.choose_where(clusters, |_, _| true, linked);
    }

    /// Like [`Expectation::choose`], deciding only the ordered pairs `decides` names (a mesh grown by some
    /// clusters decides the pairs that involve them; its members' links with each other stay as chosen).
    pub fn choose_where(
        &mut self,
        clusters: &[ClusterName],
        decides: impl Fn(&ClusterName, &ClusterName) -> bool,
        linked: impl Fn(&ClusterName, &ClusterName) -> bool,
    ) {
        let chosen = std::sync::Arc::make_mut(&mut self.chosen);
        for a in clusters {
            for b in clusters {
                if a != b && decides(a, b) {
                    chosen
                        .entry(a.clone())
                        .or_default()
                        .insert(b.clone(), linked(a, b));
                }
            }
        }
    }

    /// Whether `from` is meant to hold a peer gateway for `to`.
    pub fn expects(&self, from: &ClusterName, to: &ClusterName) -> bool {
        match self.decided(from, to) {
            Some(meant) => meant,
            None => from != to && self.full_mesh.contains(from) && self.full_mesh.contains(to),
        }
    }

    fn decided(&self, from: &ClusterName, to: &ClusterName) -> Option<bool> {
        self.chosen.get(from)?.get(to).copied()
    }
}
