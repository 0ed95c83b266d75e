//! The topology model: from what the server's caches hold about each cluster (a [`ClusterSnapshot`], plain
//! data, no Kubernetes types), [`compute`] derives the [`Graph`] the Topology page draws — each cluster's parts
//! and health, the peering links with the state of both their sides, and the findings, each naming the
//! clusters and saying what to do. Pure and deterministic: the same snapshots give the same graph, so the
//! server can [`diff`](crate::ids::graph::diff) successive graphs and send only what changed.
//!
//! A link A→B exists when A holds a remote peer gateway for B (mesh-spec §2.1). Its state combines the
//! gateway's `gloo.solo.io/*` conditions (absent means pending, not connected: the corrected Peers check of
//! §3), whether the address it dials is still B's east-west address (§1.3), whether the trust domain it
//! records is B's (§9 P5), whether A and B share a root of trust (§6.2, §9 P6) and run the same Istio minor
//! version (§9 P14).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::Value;

use crate::ca::short;
use crate::ids::graph::{
    ClusterNode, ConditionView, EastWestKind, EastWestView, Finding, FindingKind, Graph, Health,
    LinkEdge, NamespaceNode, Part, ServiceNode,
};
use crate::ids::{ClusterName, istio_version, version_rule};

/// The label that makes a Service (or every Service of a namespace) available across the linked clusters,
/// as `<name>.<namespace>.mesh.internal` (Solo's multicluster guides; `PEERING_DISCOVERY_SUFFIX`, §2.4).
pub const SERVICE_SCOPE_LABEL: &str = "solo.io/service-scope";
/// The domain of exported services' mesh-wide names (`PEERING_DISCOVERY_SUFFIX`'s default, §2.4).
pub const MESH_DOMAIN: &str = "mesh.internal";
const CLUSTER_LABEL: &str = "topology.istio.io/cluster";
const NETWORK_LABEL: &str = "topology.istio.io/network";

/// The conditions the Solo peering controller writes on a peer gateway (§2.3); the same list as the Peers
/// check's, so the Topology and Checks pages agree.
const PEER_CONDITIONS: [&str; 3] = [
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
    fn advertised(&self) -> Vec<&str> {
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
    /// `status.conditions`.
    pub conditions: Vec<ConditionView>,
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
            conditions: conditions_of(&g.data),
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

    fn minor(&self) -> Option<(u64, u64)> {
        let v = istio_version(self.smc.as_ref()?.version.as_deref()?)?;
        Some((v.0, v.1))
    }

    fn version(&self) -> Option<&str> {
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

    /// Whether the pair's expectation comes from a choice rather than the full-mesh rule.
    fn chose(&self, a: &ClusterName, b: &ClusterName) -> bool {
        self.decided(a, b).is_some() || self.decided(b, a).is_some()
    }

    fn decided(&self, from: &ClusterName, to: &ClusterName) -> Option<bool> {
        self.chosen.get(from)?.get(to).copied()
    }
}

/// Problems noted while building, each with the health it implies.
#[derive(Default)]
struct Reasons(Vec<(Health, String)>);

impl Reasons {
    fn add(&mut self, health: Health, reason: impl Into<String>) {
        self.0.push((health, reason.into()));
    }

    fn health(&self) -> Health {
        self.0.iter().fold(Health::Healthy, |h, (r, _)| h.worst(*r))
    }

    /// Worst first; equal ones in the order noted.
    fn into_lines(mut self) -> Vec<String> {
        self.0.sort_by_key(|(h, _)| std::cmp::Reverse(h.severity()));
        self.0.into_iter().map(|(_, r)| r).collect()
    }
}

fn part(state: Health, detail: impl Into<String>) -> Part {
    Part {
        state,
        detail: detail.into(),
    }
}

fn workload(what: &str, w: &WorkloadState) -> Part {
    let WorkloadState { desired, ready } = *w;
    if desired == 0 {
        part(
            Health::Failing,
            format!("{what}: no pods wanted (scaled to 0)"),
        )
    } else if ready == 0 {
        part(
            Health::Failing,
            format!("{what}: 0 of {desired} pods ready"),
        )
    } else if ready < desired {
        part(
            Health::Degraded,
            format!("{what}: {ready} of {desired} pods ready"),
        )
    } else {
        part(
            Health::Healthy,
            format!("{what}: {ready} of {desired} pods ready"),
        )
    }
}

fn combine(parts: &[Part]) -> Part {
    Part {
        state: parts.iter().fold(Health::Healthy, |h, p| h.worst(p.state)),
        detail: parts
            .iter()
            .map(|p| p.detail.as_str())
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn operator_part(s: &ClusterSnapshot) -> Part {
    match &s.operator {
        None => part(
            Health::Failing,
            "no gloo-operator Deployment in gloo-mesh: install the operator (setup step \"Operator\")",
        ),
        Some(w) => workload("gloo-operator", w),
    }
}

fn control_plane_part(s: &ClusterSnapshot) -> Part {
    let smc = match &s.smc {
        None => part(
            Health::Failing,
            "no ServiceMeshController in gloo-mesh: create it (setup step \"Control plane\")",
        ),
        Some(smc) => {
            let ready = smc
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let phase = smc.phase.as_deref().unwrap_or("not reported");
            if let Some(c) = smc.conditions.iter().find(|c| c.status == "False") {
                part(
                    Health::Failing,
                    format!(
                        "ServiceMeshController {} is False ({}): {}",
                        c.type_, c.reason, c.message
                    ),
                )
            } else if ready && phase == "SUCCEEDED" {
                part(Health::Healthy, "ServiceMeshController ready")
            } else {
                part(
                    Health::Degraded,
                    format!("ServiceMeshController installing (phase {phase})"),
                )
            }
        }
    };
    let istiod = match &s.istiod {
        None => part(
            Health::Failing,
            "no istiod Deployment (app=istiod) in istio-system",
        ),
        Some(i) => workload("istiod", &i.pods),
    };
    let mut parts = vec![smc, istiod];
    if let Some(v) = s.version()
        && let Err(e) = version_rule(v)
    {
        parts.push(part(Health::Degraded, e));
    }
    combine(&parts)
}

fn ztunnel_part(s: &ClusterSnapshot) -> Part {
    let one = |what: &str, w: &Option<WorkloadState>| match w {
        None => part(
            Health::Failing,
            format!("no {what} DaemonSet in istio-system"),
        ),
        Some(w) => workload(what, w),
    };
    combine(&[one("ztunnel", &s.ztunnel), one("istio-cni-node", &s.cni)])
}

fn eastwest_view(ew: &EastWestState) -> EastWestView {
    let programmed = ew.programmed.as_ref().is_some_and(|c| c.status == "True");
    let address = ew.advertised().first().map(|a| a.to_string());
    let mut reasons = Reasons::default();
    match &ew.programmed {
        None => reasons.add(Health::Degraded, "not programmed yet (no Programmed condition)"),
        Some(c) if c.status != "True" && c.reason == "AddressNotAssigned" => reasons.add(
            Health::Failing,
            format!(
                "not programmed (AddressNotAssigned): {}; this cluster may have no load-balancer controller: set an \
                 address override (istio.io/expose-istiod-address) or use NodePort peering",
                c.message
            ),
        ),
        Some(c) if c.status != "True" => reasons.add(
            Health::Failing,
            format!("not programmed ({}): {}", c.reason, c.message),
        ),
        Some(_) => {}
    }
    if address.is_none() {
        reasons.add(
            Health::Failing,
            "no address yet: peers have nothing to dial",
        );
    }
    if ew.cluster_label.is_none() {
        reasons.add(
            Health::Degraded,
            "no topology.istio.io/cluster label: NodePort and automatic peering need it; add it to the gateway",
        );
    }
    let state = reasons.health();
    let detail = if state == Health::Healthy {
        format!(
            "programmed, {} at {}",
            ew.kind.label(),
            address.as_deref().unwrap_or_default()
        )
    } else {
        reasons.into_lines().join("; ")
    };
    EastWestView {
        state,
        detail,
        address,
        kind: ew.kind,
        programmed,
    }
}

fn license_part(s: &ClusterSnapshot) -> Part {
    match &s.license {
        LicenseState::Valid => part(Health::Healthy, "valid for multicluster"),
        LicenseState::NotCheckable => part(
            Health::Healthy,
            "not checkable: Istio before 1.27 has no license endpoint",
        ),
        LicenseState::Invalid(why) => part(
            Health::Failing,
            format!(
                "{why}: give the operator a Solo license that includes multicluster, then restart istiod"
            ),
        ),
        LicenseState::Unknown(why) => part(Health::Unknown, why.clone()),
    }
}

fn drift_part(s: &ClusterSnapshot) -> Option<Part> {
    let drifted = s.drift.as_ref()?;
    Some(if drifted.is_empty() {
        part(
            Health::Healthy,
            "as Meshdeck applied it at the last comparison",
        )
    } else {
        part(
            Health::Degraded,
            format!(
                "{} from what Meshdeck applied: {} — compare and re-apply on the cluster's page",
                if drifted.len() == 1 {
                    "1 object differs".to_string()
                } else {
                    format!("{} objects differ", drifted.len())
                },
                drifted.join(", ")
            ),
        )
    })
}

fn namespaces(s: &ClusterSnapshot) -> Vec<NamespaceNode> {
    let mut out: Vec<NamespaceNode> = s
        .namespaces
        .iter()
        .filter_map(|ns| {
            let meshed = ns.is_meshed();
            let mut services: Vec<ServiceNode> = ns
                .services
                .iter()
                .map(|svc| {
                    let exported = ns.exports(svc);
                    ServiceNode {
                        name: svc.name.clone(),
                        exported,
                        hostname: exported
                            .then(|| format!("{}.{}.{MESH_DOMAIN}", svc.name, ns.name)),
                    }
                })
                .collect();
            if !meshed && !services.iter().any(|s| s.exported) {
                return None;
            }
            services.sort_by(|a, b| a.name.cmp(&b.name));
            Some(NamespaceNode {
                name: ns.name.clone(),
                meshed,
                services,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn cluster_node(s: &ClusterSnapshot, exports_reachable_from: Vec<ClusterName>) -> ClusterNode {
    let operator = operator_part(s);
    let control_plane = control_plane_part(s);
    let ztunnel = ztunnel_part(s);
    let license = license_part(s);
    let drift = drift_part(s);
    let eastwest = s.eastwest.as_ref().map(eastwest_view);
    let mut reasons = Reasons::default();
    if let Some(err) = &s.unreachable {
        reasons.add(
            Health::Unknown,
            format!("unreachable: {err}; showing the state last seen"),
        );
    }
    for (what, p) in [
        ("operator", &operator),
        ("control plane", &control_plane),
        ("ztunnel/CNI", &ztunnel),
        ("license", &license),
    ] {
        if p.state != Health::Healthy {
            reasons.add(p.state, format!("{what}: {}", p.detail));
        }
    }
    if let Some(p) = drift.as_ref().filter(|p| p.state != Health::Healthy) {
        reasons.add(p.state, format!("drift: {}", p.detail));
    }
    match &eastwest {
        None => reasons.add(
            Health::Failing,
            "east-west gateway: none (class istio-eastwest): create it (setup step \"East-west gateway\")",
        ),
        Some(ew) if ew.state != Health::Healthy => {
            reasons.add(ew.state, format!("east-west gateway: {}", ew.detail));
        }
        Some(_) => {}
    }
    if s.root_fingerprint.is_none() {
        reasons.add(
            Health::Failing,
            "root of trust: no cacerts in istio-system: create it from the shared root (setup step \"Root of trust\"), \
             then restart istiod",
        );
    }
    if s.network.is_none() {
        reasons.add(
            Health::Degraded,
            "network: istio-system has no topology.istio.io/network label, which peering needs",
        );
    }
    // A registered cluster with nothing of the mesh in it is not failing: it is not set up yet.
    let bare = s.operator.is_none()
        && s.smc.is_none()
        && s.istiod.is_none()
        && s.eastwest.is_none()
        && s.peers.is_empty()
        && s.root_fingerprint.is_none();
    if bare && s.unreachable.is_none() {
        reasons = Reasons::default();
        reasons.add(
            Health::Unknown,
            "not in a mesh yet: no operator, control plane, east-west gateway or root of trust; set it up from Setup",
        );
    }
    let health = if s.unreachable.is_some() || bare {
        Health::Unknown
    } else {
        reasons.health()
    };
    ClusterNode {
        name: s.name.clone(),
        network: s.network.clone(),
        region: s.region.clone(),
        reachable: s.unreachable.is_none(),
        health,
        reasons: reasons.into_lines(),
        operator,
        control_plane,
        revision: s.istiod.as_ref().and_then(|i| i.revision.clone()),
        version: s.version().map(String::from),
        ztunnel,
        eastwest,
        root_fingerprint: s.root_fingerprint.clone(),
        trust_domain: s.trust_domain.clone(),
        license,
        drift,
        namespaces: namespaces(s),
        exports_reachable_from,
    }
}

/// The peering state of a peer gateway's conditions: (health, connected, why not).
fn peering_state(conditions: &[ConditionView]) -> (Health, bool, Option<String>) {
    let find = |t: &str| conditions.iter().find(|c| c.type_ == t);
    let present: Vec<&ConditionView> = PEER_CONDITIONS.iter().filter_map(|t| find(t)).collect();
    if present.is_empty() {
        return (
            Health::Degraded,
            false,
            Some("pending: no peering conditions reported yet (not connected)".into()),
        );
    }
    if let Some(c) = present.iter().find(|c| c.status == "False") {
        let short_type = c.type_.trim_start_matches("gloo.solo.io/");
        return (
            Health::Failing,
            false,
            Some(format!(
                "{short_type} is False ({}): {}",
                c.reason, c.message
            )),
        );
    }
    let waiting: Vec<&str> = PEER_CONDITIONS
        .iter()
        .filter(|t| find(t).is_none_or(|c| c.status != "True"))
        .map(|t| t.trim_start_matches("gloo.solo.io/"))
        .collect();
    if waiting.is_empty() {
        (Health::Healthy, true, None)
    } else {
        (
            Health::Degraded,
            false,
            Some(format!("pending: waiting for {}", waiting.join(", "))),
        )
    }
}

/// "c1", "c1 and c2", "c1, c2 and c3", "c1, c2, c3, c4, c5 and 7 more".
fn names<'a>(list: impl IntoIterator<Item = &'a ClusterName>) -> String {
    let v: Vec<&str> = list.into_iter().map(ClusterName::as_str).collect();
    match v.len() {
        0 => String::new(),
        1 => v[0].to_string(),
        n if n <= 6 => format!("{} and {}", v[..n - 1].join(", "), v[n - 1]),
        n => format!("{} and {} more", v[..5].join(", "), n - 5),
    }
}

/// The value most clusters have; a tie goes to the greatest (the newest version).
fn most_common<T: Ord + Clone>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
        .map(|(v, _)| v.clone())
}

/// A link being built, with what the findings need to know of it.
struct Built<'a> {
    from: &'a ClusterSnapshot,
    to: &'a ClusterSnapshot,
    gateway: &'a PeerGatewayState,
    /// Other peer gateways in `from` for the same peer.
    extra: Vec<&'a str>,
}

/// Derives the graph: every cluster with its parts and health, every link with the state of both its sides,
/// and the findings (unreachable clusters, root and trust-domain mismatches, failing and stale links, clusters
/// and links missing from an expected full mesh, one-way links there, version skew across links, peer
/// gateways for clusters Meshdeck does not manage). Snapshots with a duplicate name after the first are
/// ignored.
pub fn compute(snapshots: &[ClusterSnapshot], expect: &Expectation) -> Graph {
    let mut snaps: Vec<&ClusterSnapshot> = snapshots.iter().collect();
    snaps.sort_by(|a, b| a.name.cmp(&b.name));
    snaps.dedup_by(|b, a| a.name == b.name);
    let by_name: HashMap<&str, &ClusterSnapshot> =
        snaps.iter().map(|s| (s.name.as_str(), *s)).collect();
    let mut by_network: HashMap<&str, Vec<&ClusterSnapshot>> = HashMap::new();
    for s in &snaps {
        if let Some(n) = &s.network {
            by_network.entry(n.as_str()).or_default().push(*s);
        }
    }
    let present: Vec<&ClusterName> = snaps.iter().map(|s| &s.name).collect();
    let mut findings = Vec::new();

    // The peer each gateway is for: its cluster label; without one (older or hand-written gateways) the
    // network label, which names the cluster or, failing that, the one cluster of that network (§2.1).
    let mut built: BTreeMap<(&ClusterName, &ClusterName), Built> = BTreeMap::new();
    for from in snaps.iter().copied() {
        let mut gateways: Vec<&PeerGatewayState> = from.peers.iter().collect();
        gateways.sort_by(|a, b| a.name.cmp(&b.name));
        for gw in gateways {
            let target = match (&gw.cluster_label, &gw.network_label) {
                (Some(c), _) => by_name.get(c.as_str()).copied().ok_or(c.as_str()),
                (None, Some(n)) => by_name
                    .get(n.as_str())
                    .copied()
                    .or_else(|| match by_network.get(n.as_str()).map(Vec::as_slice) {
                        Some([only]) => Some(*only),
                        _ => None,
                    })
                    .ok_or(n.as_str()),
                (None, None) => Err(""),
            };
            match target {
                // istiod ignores a peer gateway for its own cluster (automatic peering makes one, §7.2).
                Ok(to) if to.name == from.name => {}
                Ok(to) => match built.get_mut(&(&from.name, &to.name)) {
                    Some(b) => b.extra.push(&gw.name),
                    None => {
                        built.insert(
                            (&from.name, &to.name),
                            Built {
                                from,
                                to,
                                gateway: gw,
                                extra: vec![],
                            },
                        );
                    }
                },
                Err(peer) => findings.push(unknown_peer(from, gw, peer)),
            }
        }
    }

    let linked: BTreeSet<(&ClusterName, &ClusterName)> = built.keys().copied().collect();
    let mut links = Vec::with_capacity(built.len());
    let mut reachable_from: HashMap<&str, Vec<ClusterName>> = HashMap::new();
    let mut stale: BTreeMap<&ClusterName, Vec<(&ClusterName, &str, bool)>> = BTreeMap::new();
    let mut wrong_trust: BTreeMap<&ClusterName, Vec<(&ClusterName, Option<&str>)>> =
        BTreeMap::new();
    let mut failing: BTreeMap<&ClusterName, Vec<(&ClusterName, String)>> = BTreeMap::new();
    let mut root_pairs: BTreeSet<(&ClusterName, &ClusterName)> = BTreeSet::new();
    let mut skew_pairs: BTreeSet<(&ClusterName, &ClusterName)> = BTreeSet::new();
    let mut one_way: BTreeMap<&ClusterName, Vec<&ClusterName>> = BTreeMap::new();

    for b in built.values() {
        let (a, z, gw) = (b.from, b.to, b.gateway);
        let mut reasons = Reasons::default();
        let (state, connected, why) = peering_state(&gw.conditions);
        if let Some(why) = &why {
            reasons.add(state, why.clone());
        }
        let expected = z
            .eastwest
            .as_ref()
            .map(EastWestState::advertised)
            .unwrap_or_default();
        let mut explained = false;
        match (&gw.address, expected.first()) {
            (None, _) => reasons.add(
                Health::Failing,
                format!(
                    "the peer gateway has no spec.addresses: re-link {} → {}",
                    a.name, z.name
                ),
            ),
            (Some(addr), Some(now)) if !expected.contains(&addr.as_str()) => {
                explained = true;
                reasons.add(
                    if connected {
                        Health::Degraded
                    } else {
                        Health::Failing
                    },
                    format!(
                        "stale address: dials {addr}, but {}'s east-west address is now {now}",
                        z.name
                    ),
                );
                stale
                    .entry(&z.name)
                    .or_default()
                    .push((&a.name, addr.as_str(), connected));
            }
            (Some(_), None) => reasons.add(
                Health::Degraded,
                format!(
                    "{}'s east-west gateway has no address to compare with",
                    z.name
                ),
            ),
            (Some(_), Some(_)) => {}
        }
        if let Some(actual) = &z.trust_domain
            && gw.trust_domain.as_deref() != Some(actual.as_str())
        {
            explained = true;
            reasons.add(
                Health::Failing,
                format!(
                    "trust domain mismatch: the gateway records {}, but {}'s trust domain is {actual:?}",
                    gw.trust_domain
                        .as_deref()
                        .map_or("none".to_string(), |t| format!("{t:?}")),
                    z.name
                ),
            );
            wrong_trust
                .entry(&z.name)
                .or_default()
                .push((&a.name, gw.trust_domain.as_deref()));
        }
        if let (Some(ra), Some(rz)) = (&a.root_fingerprint, &z.root_fingerprint)
            && ra != rz
        {
            explained = true;
            reasons.add(
                Health::Failing,
                format!(
                    "root mismatch: {} has root {}, {} has root {}",
                    a.name,
                    short(ra),
                    z.name,
                    short(rz)
                ),
            );
            root_pairs.insert(ordered(&a.name, &z.name));
        }
        if let (Some(ma), Some(mz)) = (a.minor(), z.minor())
            && ma != mz
        {
            reasons.add(
                Health::Degraded,
                format!(
                    "version skew: {} runs {}, {} runs {}; keep the same Istio minor version on every cluster",
                    a.name,
                    a.version().unwrap_or_default(),
                    z.name,
                    z.version().unwrap_or_default()
                ),
            );
            skew_pairs.insert(ordered(&a.name, &z.name));
        }
        if !linked.contains(&(&z.name, &a.name)) {
            let expected_both = expect.expects(&z.name, &a.name);
            reasons.add(
                if expected_both { Health::Degraded } else { Health::Healthy },
                format!(
                    "one-way: {z} holds no peer gateway for {a}, so {z}'s workloads cannot reach {a}'s services",
                    a = a.name,
                    z = z.name
                ),
            );
            if expected_both {
                one_way.entry(&a.name).or_default().push(&z.name);
            }
        }
        if !b.extra.is_empty() {
            reasons.add(
                Health::Degraded,
                format!(
                    "{} holds more than one peer gateway for {}: {}, {}; delete the extra ones",
                    a.name,
                    z.name,
                    gw.name,
                    b.extra.join(", ")
                ),
            );
        }
        for (s, side) in [
            (a, "its peer gateway"),
            (z, "its east-west address and root"),
        ] {
            if s.unreachable.is_some() {
                reasons.add(
                    Health::Healthy,
                    format!("{} is unreachable: {side} as last seen", s.name),
                );
            }
        }
        let health = reasons.health();
        if state == Health::Failing && !explained {
            failing
                .entry(&z.name)
                .or_default()
                .push((&a.name, why.unwrap_or_default()));
        }
        if connected && health != Health::Failing {
            reachable_from
                .entry(z.name.as_str())
                .or_default()
                .push(a.name.clone());
        }
        links.push(LinkEdge {
            from: a.name.clone(),
            to: z.name.clone(),
            health,
            conditions: gw.conditions.clone(),
            address: gw.address.clone(),
            expected_address: expected.first().map(|s| s.to_string()),
            reasons: reasons.into_lines(),
        });
    }

    for s in &snaps {
        if let Some(err) = &s.unreachable {
            findings.push(Finding {
                kind: FindingKind::Unreachable,
                severity: Health::Unknown,
                clusters: vec![s.name.clone()],
                message: format!(
                    "{} cannot be reached ({err}): it is shown as last seen, and its links may have changed since. \
                     Check its address and credentials in Meshdeck (Clusters → Re-test).",
                    s.name
                ),
            });
        }
    }
    root_findings(&snaps, &root_pairs, &mut findings);
    for (to, from) in wrong_trust {
        let actual = by_name[to.as_str()]
            .trust_domain
            .as_deref()
            .unwrap_or_default();
        let mut recorded: BTreeMap<Option<&str>, Vec<&ClusterName>> = BTreeMap::new();
        for (f, t) in &from {
            recorded.entry(*t).or_default().push(*f);
        }
        let what = recorded
            .iter()
            .map(|(t, fs)| {
                format!(
                    "{} {}",
                    names(fs.iter().copied()),
                    t.map_or("no trust domain".to_string(), |t| format!("{t:?}"))
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let sources: Vec<&ClusterName> = from.iter().map(|(f, _)| *f).collect();
        findings.push(Finding {
            kind: FindingKind::TrustDomainMismatch,
            severity: Health::Failing,
            clusters: std::iter::once(to).chain(sources.iter().copied()).cloned().collect(),
            message: format!(
                "The peer gateways for {to} record the wrong trust domain ({what}), but {to}'s trust domain is \
                 {actual:?}: ztunnel then rejects {to}'s workloads (\"peer did not present the expected SAN\"). \
                 Re-link {} → {to}, which rebuilds the gateways from {to}'s mesh config.",
                names(sources.iter().copied())
            ),
        });
    }
    for (to, from) in failing {
        let sources: Vec<&ClusterName> = from.iter().map(|(f, _)| *f).collect();
        let details = from
            .iter()
            .take(3)
            .map(|(f, why)| format!("{f}: {why}"))
            .collect::<Vec<_>>()
            .join("; ");
        let (invalid, other): (Vec<_>, Vec<_>) =
            from.iter().partition(|(_, why)| why.contains("(Invalid)"));
        let mut advice = vec![];
        if !invalid.is_empty() {
            advice.push(format!(
                "Re-link {} → {to}: an invalid peer gateway is rebuilt from {to}'s live state.",
                names(invalid.iter().map(|(f, _)| *f))
            ));
        }
        if !other.is_empty() {
            let others = names(other.iter().map(|(f, _)| *f));
            advice.push(format!(
                "Check that {to}'s east-west gateway is reachable from {others}, that {to}'s istiod runs, and that \
                 the licenses allow multicluster; then look at istiod's log in {others}."
            ));
        }
        findings.push(Finding {
            kind: FindingKind::LinkFailing,
            severity: Health::Failing,
            clusters: std::iter::once(to)
                .chain(sources.iter().copied())
                .cloned()
                .collect(),
            message: format!(
                "Peering with {to} fails from {} ({details}). {}",
                names(sources.iter().copied()),
                advice.join(" ")
            ),
        });
    }
    for (to, from) in stale {
        let now = by_name[to.as_str()]
            .eastwest
            .as_ref()
            .and_then(|e| e.advertised().first().map(|a| a.to_string()))
            .unwrap_or_default();
        let mut dialed: BTreeMap<&str, Vec<&ClusterName>> = BTreeMap::new();
        for (f, addr, _) in &from {
            dialed.entry(*addr).or_default().push(*f);
        }
        let what = dialed
            .iter()
            .map(|(addr, fs)| format!("{} dial {addr}", names(fs.iter().copied())))
            .collect::<Vec<_>>()
            .join("; ");
        let sources: Vec<&ClusterName> = from.iter().map(|(f, _, _)| *f).collect();
        findings.push(Finding {
            kind: FindingKind::StaleAddress,
            severity: if from.iter().all(|(_, _, connected)| *connected) {
                Health::Degraded
            } else {
                Health::Failing
            },
            clusters: std::iter::once(to).chain(sources.iter().copied()).cloned().collect(),
            message: format!(
                "{to}'s east-west gateway is now at {now}, but peer gateways for it use an old address ({what}). \
                 Re-link {} → {to} so they carry the current address (with automatic peering, check that the \
                 management plane redistributed {to}'s peer gateway).",
                names(sources.iter().copied())
            ),
        });
    }
    mesh_findings(&present, expect, &linked, &one_way, &mut findings);
    skew_findings(&snaps, &skew_pairs, &mut findings);
    findings
        .sort_by(|a, b| (a.kind, &a.clusters, &a.message).cmp(&(b.kind, &b.clusters, &b.message)));

    let clusters = snaps
        .iter()
        .map(|s| {
            let mut from = reachable_from.remove(s.name.as_str()).unwrap_or_default();
            from.sort();
            cluster_node(s, from)
        })
        .collect();
    // `built` is keyed by (from, to), so the links are already in canonical order.
    Graph {
        clusters,
        links,
        findings,
    }
}

fn ordered<'a>(a: &'a ClusterName, b: &'a ClusterName) -> (&'a ClusterName, &'a ClusterName) {
    if a <= b { (a, b) } else { (b, a) }
}

/// For each cluster, the others it shares a pair with.
fn partners<'a>(
    pairs: &BTreeSet<(&'a ClusterName, &'a ClusterName)>,
) -> BTreeMap<&'a ClusterName, BTreeSet<&'a ClusterName>> {
    let mut out: BTreeMap<&ClusterName, BTreeSet<&ClusterName>> = BTreeMap::new();
    for (a, b) in pairs {
        out.entry(a).or_default().insert(b);
        out.entry(b).or_default().insert(a);
    }
    out
}

fn unknown_peer(from: &ClusterSnapshot, gw: &PeerGatewayState, peer: &str) -> Finding {
    let message = if peer.is_empty() {
        format!(
            "{} holds peer gateway {} without a topology.istio.io/cluster or topology.istio.io/network label, which \
             the peering controller rejects: delete it (gateway {} in istio-eastwest on {}) and link again from Meshdeck.",
            from.name, gw.name, gw.name, from.name
        )
    } else {
        format!(
            "{} holds peer gateway {} for cluster {peer:?}, which Meshdeck does not manage: register {peer} in Meshdeck \
             to see this link, or, if that cluster is gone, delete the gateway (gateway {} in istio-eastwest on {}).",
            from.name, gw.name, gw.name, from.name
        )
    };
    Finding {
        kind: FindingKind::UnknownPeer,
        severity: Health::Degraded,
        clusters: vec![from.name.clone()],
        message,
    }
}

/// One finding per cluster whose root is not the one most clusters hold and that is linked with a cluster of
/// another root; without such a root (a tie), one finding for all the clusters involved.
fn root_findings(
    snaps: &[&ClusterSnapshot],
    pairs: &BTreeSet<(&ClusterName, &ClusterName)>,
    findings: &mut Vec<Finding>,
) {
    if pairs.is_empty() {
        return;
    }
    let root_of: HashMap<&ClusterName, &str> = snaps
        .iter()
        .filter_map(|s| Some((&s.name, s.root_fingerprint.as_deref()?)))
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for r in root_of.values() {
        *counts.entry(*r).or_default() += 1;
    }
    let top = counts.values().max().copied().unwrap_or(0);
    let mut tops = counts.iter().filter(|(_, n)| **n == top).map(|(r, _)| *r);
    let shared = match (tops.next(), tops.next()) {
        (Some(r), None) => Some(r),
        _ => None,
    };
    let partners = partners(pairs);
    // "c1 and c2 (root aaaa…), c3 (root bbbb…)".
    let grouped = |cs: Vec<&ClusterName>| {
        let mut by_root: BTreeMap<&str, Vec<&ClusterName>> = BTreeMap::new();
        for c in cs {
            by_root.entry(root_of[c]).or_default().push(c);
        }
        by_root
            .iter()
            .map(|(r, cs)| format!("{} (root {})", names(cs.iter().copied()), short(r)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match shared {
        Some(shared) => {
            for (c, others) in &partners {
                if root_of[c] == shared {
                    continue;
                }
                findings.push(Finding {
                    kind: FindingKind::RootMismatch,
                    severity: Health::Failing,
                    clusters: std::iter::once(*c).chain(others.iter().copied()).cloned().collect(),
                    message: format!(
                        "{c} (root {}) does not share the root of trust of the clusters it is linked with, {}, so their \
                         workloads cannot verify each other. Re-issue {c}'s intermediate CA (the cacerts Secret in \
                         istio-system) from the shared root {}, then restart istiod on {c}.",
                        short(root_of[c]),
                        grouped(others.iter().copied().collect()),
                        short(shared)
                    ),
                });
            }
        }
        None => {
            let involved: Vec<&ClusterName> = partners.keys().copied().collect();
            findings.push(Finding {
                kind: FindingKind::RootMismatch,
                severity: Health::Failing,
                clusters: involved.iter().copied().cloned().collect(),
                message: format!(
                    "Linked clusters hold different roots of trust, {}, and none is held by most clusters, so their \
                     workloads cannot verify each other. Choose one root, re-issue every other cluster's intermediate \
                     CA (the cacerts Secret in istio-system) from it, then restart istiod there.",
                    grouped(involved.clone())
                ),
            });
        }
    }
}

/// One finding per cluster on a minor version other than the one most clusters run (a tie goes to the newest)
/// that is linked with a cluster on another minor.
fn skew_findings(
    snaps: &[&ClusterSnapshot],
    pairs: &BTreeSet<(&ClusterName, &ClusterName)>,
    findings: &mut Vec<Finding>,
) {
    if pairs.is_empty() {
        return;
    }
    let by_name: HashMap<&ClusterName, &ClusterSnapshot> =
        snaps.iter().map(|s| (&s.name, *s)).collect();
    let Some(target) = most_common(snaps.iter().filter_map(|s| s.minor())) else {
        return;
    };
    for (c, others) in partners(pairs) {
        let s = by_name[c];
        if s.minor() == Some(target) {
            continue;
        }
        let mut by_minor: BTreeMap<(u64, u64), Vec<&ClusterName>> = BTreeMap::new();
        for o in &others {
            if let Some(m) = by_name[o].minor() {
                by_minor.entry(m).or_default().push(*o);
            }
        }
        let peers = by_minor
            .iter()
            .map(|((ma, mi), cs)| {
                format!(
                    "{} {} {ma}.{mi}",
                    names(cs.iter().copied()),
                    if cs.len() == 1 { "runs" } else { "run" }
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        findings.push(Finding {
            kind: FindingKind::VersionSkew,
            severity: Health::Degraded,
            clusters: std::iter::once(c).chain(others.iter().copied()).cloned().collect(),
            message: format!(
                "{c} runs Istio {} but is linked with clusters on another minor version ({peers}). The rule is the \
                 same Istio minor version on every cluster of the mesh: upgrade {c} to {}.{} (the \
                 ServiceMeshController's version).",
                s.version().unwrap_or_default(),
                target.0,
                target.1
            ),
        });
    }
}

/// Against what is expected (a full mesh, or the linking chosen at setup): clusters linked with none of
/// the clusters they are meant to be linked with, pairs linked in neither direction, and links not returned.
fn mesh_findings(
    present: &[&ClusterName],
    expect: &Expectation,
    linked: &BTreeSet<(&ClusterName, &ClusterName)>,
    one_way: &BTreeMap<&ClusterName, Vec<&ClusterName>>,
    findings: &mut Vec<Finding>,
) {
    // Who each cluster is meant to be linked with, in either direction.
    let mut partners: BTreeMap<&ClusterName, BTreeSet<&ClusterName>> = BTreeMap::new();
    for (i, a) in present.iter().enumerate() {
        for b in &present[i + 1..] {
            if expect.expects(a, b) || expect.expects(b, a) {
                partners.entry(*a).or_default().insert(*b);
                partners.entry(*b).or_default().insert(*a);
            }
        }
    }
    if partners.len() < 2 {
        return;
    }
    let chosen = |a: &ClusterName, b: &ClusterName| expect.chose(a, b);
    let with = |c: &ClusterName, p: &BTreeSet<&ClusterName>| {
        p.iter()
            .any(|o| linked.contains(&(c, *o)) || linked.contains(&(*o, c)))
    };
    let alone: BTreeSet<&ClusterName> = partners
        .iter()
        .filter(|(c, p)| !with(c, p))
        .map(|(c, _)| *c)
        .collect();
    let any_chosen = partners.iter().any(|(c, p)| p.iter().any(|o| chosen(c, o)));
    if alone.len() == partners.len() {
        let all = names(partners.keys().copied());
        findings.push(Finding {
            kind: FindingKind::NotMeshed,
            severity: Health::Failing,
            clusters: partners.keys().copied().cloned().collect(),
            message: if any_chosen {
                format!(
                    "None of the {} clusters meant to be linked ({all}, as chosen at setup) are linked. Link them \
                     (Setup → Link, the pairs chosen), or with automatic peering check that each east-west gateway \
                     is programmed and that the management plane distributes the peer gateways.",
                    partners.len()
                )
            } else {
                format!(
                    "None of the {} clusters expected in the full mesh ({all}) are linked. Link them (Setup → Link, \
                     every pair both ways), or with automatic peering check that each east-west gateway is programmed \
                     and that the management plane distributes the peer gateways.",
                    partners.len()
                )
            },
        });
        return;
    }
    for c in &alone {
        let p = &partners[c];
        findings.push(Finding {
            kind: FindingKind::NotMeshed,
            severity: Health::Failing,
            clusters: vec![(*c).clone()],
            message: if p.iter().any(|o| chosen(c, o)) {
                format!(
                    "{c} is meant to be linked with {} (as chosen at setup) but is linked with none of them. Link \
                     it (Setup → Link), or with automatic peering check that its east-west gateway is programmed and \
                     that the management plane distributes its peer gateway.",
                    names(p.iter().copied())
                )
            } else {
                format!(
                    "{c} is expected in the full mesh but is linked with none of the other {} clusters. Link it both \
                     ways with each of them (Setup → Link), or with automatic peering check that its east-west gateway \
                     is programmed and that the management plane distributes its peer gateway.",
                    p.len()
                )
            },
        });
    }
    for (a, p) in &partners {
        for b in
            p.range::<&ClusterName, _>((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded))
        {
            if alone.contains(a)
                || alone.contains(b)
                || linked.contains(&(a, b))
                || linked.contains(&(b, a))
            {
                continue;
            }
            let (ab, ba) = (expect.expects(a, b), expect.expects(b, a));
            let message = match (ab, ba, chosen(a, b)) {
                (true, true, false) => format!(
                    "{a} and {b} are expected in the full mesh but are not linked in either direction, so neither \
                     reaches the other's services. Link them both ways (Setup → Link {a} ⇄ {b})."
                ),
                (true, true, true) => format!(
                    "{a} and {b} are meant to be linked both ways (as chosen at setup) but are not linked in either \
                     direction, so neither reaches the other's services. Link them both ways (Setup → Link {a} ⇄ {b})."
                ),
                (from_a, _, _) => {
                    let (x, y) = if from_a { (a, b) } else { (b, a) };
                    format!(
                        "{x} is meant to hold a peer gateway for {y} (a one-way link chosen at setup) but holds none, \
                         so {x}'s workloads cannot reach {y}'s services. Link {x} → {y} (Setup → Link)."
                    )
                }
            };
            findings.push(Finding {
                kind: FindingKind::MissingLink,
                severity: Health::Degraded,
                clusters: vec![(*a).clone(), (*b).clone()],
                message,
            });
        }
    }
    for (a, lacking) in one_way {
        let verb = if lacking.len() == 1 { "holds" } else { "hold" };
        findings.push(Finding {
            kind: FindingKind::OneWay,
            severity: Health::Degraded,
            clusters: std::iter::once(*a).chain(lacking.iter().copied()).cloned().collect(),
            message: format!(
                "{a} links to {l}, but {l} {verb} no peer gateway for {a}, so their workloads cannot reach {a}'s \
                 services. Link {l} → {a} (or link each pair both ways).",
                l = names(lacking.iter().copied())
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::graph::{apply, diff};

    const ROOT: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const OTHER_ROOT: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn name(n: &str) -> ClusterName {
        ClusterName::new(n).expect("name")
    }

    fn cond(t: &str, status: &str, reason: &str, message: &str) -> ConditionView {
        ConditionView {
            type_: t.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn connected() -> Vec<ConditionView> {
        let mut c = vec![
            cond("Accepted", "True", "Accepted", "Resource accepted"),
            cond(
                "Programmed",
                "True",
                "Programmed",
                "This Gateway is remote; Istio will not program it",
            ),
        ];
        c.extend(
            PEER_CONDITIONS
                .iter()
                .map(|t| cond(t, "True", "Programmed", "")),
        );
        c
    }

    fn address(i: usize) -> String {
        format!("10.0.{}.{}", i / 250, i % 250 + 1)
    }

    /// A healthy cluster: everything installed and ready, east-west gateway at `address(i)`, shared root,
    /// trust domain = its name, Istio 1.28.1; one meshed namespace with an exported and a local service.
    fn healthy(i: usize) -> ClusterSnapshot {
        let n = format!("c{i}");
        let ready = Some(WorkloadState {
            desired: 2,
            ready: 2,
        });
        let labels = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        ClusterSnapshot {
            network: Some(n.clone()),
            region: Some(if i.is_multiple_of(2) { "eu" } else { "us" }.into()),
            operator: Some(WorkloadState {
                desired: 1,
                ready: 1,
            }),
            smc: Some(SmcState {
                phase: Some("SUCCEEDED".into()),
                conditions: vec![cond(
                    "Ready",
                    "True",
                    "SystemReady",
                    "All conditions are met",
                )],
                version: Some("1.28.1-patch0".into()),
                install_namespace: None,
            }),
            istiod: Some(IstiodState {
                pods: WorkloadState {
                    desired: 1,
                    ready: 1,
                },
                revision: Some("gloo".into()),
            }),
            ztunnel: ready,
            cni: ready,
            eastwest: Some(EastWestState {
                kind: EastWestKind::LoadBalancer,
                addresses: vec![address(i)],
                address_override: None,
                programmed: Some(cond(
                    "Programmed",
                    "True",
                    "Programmed",
                    "Resource programmed",
                )),
                cluster_label: Some(n.clone()),
            }),
            root_fingerprint: Some(ROOT.into()),
            trust_domain: Some(n.clone()),
            license: LicenseState::Valid,
            namespaces: vec![
                NamespaceState {
                    name: "bookinfo".into(),
                    labels: labels(&[("istio-injection", "enabled")]),
                    services: vec![
                        ServiceState {
                            name: "reviews".into(),
                            labels: BTreeMap::new(),
                        },
                        ServiceState {
                            name: "productpage".into(),
                            labels: labels(&[(SERVICE_SCOPE_LABEL, "global")]),
                        },
                    ],
                },
                NamespaceState {
                    name: "kube-system".into(),
                    labels: BTreeMap::new(),
                    services: vec![ServiceState {
                        name: "kube-dns".into(),
                        labels: BTreeMap::new(),
                    }],
                },
            ],
            ..ClusterSnapshot::new(name(&n))
        }
    }

    /// Adds to `snaps[from]` the peer gateway `link` would make for `snaps[to]`, connected.
    fn link(snaps: &mut [ClusterSnapshot], from: usize, to: usize) {
        let peer = &snaps[to];
        let gw = PeerGatewayState {
            name: format!("istio-remote-peer-{}", peer.name),
            cluster_label: Some(peer.name.to_string()),
            network_label: peer.network.clone(),
            trust_domain: peer.trust_domain.clone(),
            address: peer.eastwest.as_ref().map(|e| e.addresses[0].clone()),
            conditions: connected(),
        };
        snaps[from].peers.push(gw);
    }

    fn full_mesh(n: usize) -> Vec<ClusterSnapshot> {
        let mut snaps: Vec<ClusterSnapshot> = (1..=n).map(healthy).collect();
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    link(&mut snaps, a, b);
                }
            }
        }
        snaps
    }

    fn peer<'a>(
        snaps: &'a mut [ClusterSnapshot],
        from: usize,
        to: &str,
    ) -> &'a mut PeerGatewayState {
        snaps[from]
            .peers
            .iter_mut()
            .find(|p| p.cluster_label.as_deref() == Some(to))
            .expect("peer gateway")
    }

    fn kinds(g: &Graph) -> Vec<FindingKind> {
        g.findings.iter().map(|f| f.kind).collect()
    }

    fn only(g: &Graph, kind: FindingKind) -> &Finding {
        let found: Vec<&Finding> = g.findings.iter().filter(|f| f.kind == kind).collect();
        assert_eq!(found.len(), 1, "{:#?}", g.findings);
        found[0]
    }

    fn edge<'a>(g: &'a Graph, from: &str, to: &str) -> &'a LinkEdge {
        g.link(&name(from), &name(to)).expect("link")
    }

    fn cluster<'a>(g: &'a Graph, n: &str) -> &'a ClusterNode {
        g.cluster(&name(n)).expect("cluster")
    }

    fn clusters(f: &Finding) -> Vec<&str> {
        f.clusters.iter().map(ClusterName::as_str).collect()
    }

    #[test]
    fn a_registered_cluster_without_any_of_the_mesh_is_unknown_not_failing() {
        let snaps = vec![ClusterSnapshot::new(
            ClusterName::new("fresh").expect("name"),
        )];
        let g = compute(&snaps, &Expectation::default());
        let c = &g.clusters[0];
        assert_eq!(c.health, Health::Unknown);
        assert_eq!(c.reasons.len(), 1);
        assert!(
            c.reasons[0].starts_with("not in a mesh yet"),
            "{:?}",
            c.reasons
        );
        assert!(g.findings.is_empty(), "{:?}", g.findings);
    }

    #[test]
    fn a_healthy_full_mesh_has_healthy_nodes_and_links_and_no_findings() {
        let snaps = full_mesh(3);
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(g.findings, []);
        assert_eq!(
            g.links.iter().map(LinkEdge::id).collect::<Vec<_>>(),
            ["c1->c2", "c1->c3", "c2->c1", "c2->c3", "c3->c1", "c3->c2"]
        );
        for l in &g.links {
            assert_eq!(l.health, Health::Healthy, "{l:?}");
            assert_eq!(l.reasons, Vec::<String>::new());
            assert_eq!(l.address, l.expected_address);
            assert_eq!(l.conditions.len(), 5);
        }
        let c2 = cluster(&g, "c2");
        assert_eq!(c2.health, Health::Healthy, "{:?}", c2.reasons);
        assert!(c2.reachable);
        assert_eq!(c2.revision.as_deref(), Some("gloo"));
        assert_eq!(c2.version.as_deref(), Some("1.28.1-patch0"));
        assert_eq!(c2.network.as_deref(), Some("c2"));
        assert_eq!(c2.region.as_deref(), Some("eu"));
        let ew = c2.eastwest.as_ref().expect("east-west");
        assert_eq!(
            (ew.address.as_deref(), ew.kind, ew.programmed),
            (Some("10.0.0.3"), EastWestKind::LoadBalancer, true)
        );
        assert_eq!(ew.detail, "programmed, LoadBalancer at 10.0.0.3");
        assert_eq!(
            c2.control_plane.detail,
            "ServiceMeshController ready; istiod: 1 of 1 pods ready"
        );
        assert_eq!(
            c2.ztunnel.detail,
            "ztunnel: 2 of 2 pods ready; istio-cni-node: 2 of 2 pods ready"
        );
        // Drill-down: only the meshed namespace; the exported service and where it is reachable from.
        assert_eq!(c2.namespaces.len(), 1);
        let ns = &c2.namespaces[0];
        assert_eq!((ns.name.as_str(), ns.meshed), ("bookinfo", true));
        let svcs: Vec<(&str, bool, Option<&str>)> = ns
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.exported, s.hostname.as_deref()))
            .collect();
        assert_eq!(
            svcs,
            [
                (
                    "productpage",
                    true,
                    Some("productpage.bookinfo.mesh.internal")
                ),
                ("reviews", false, None)
            ]
        );
        assert_eq!(c2.exports_reachable_from, [name("c1"), name("c3")]);
        assert_eq!(c2.reachable_from(&ns.services[0]), [name("c1"), name("c3")]);
        assert!(c2.reachable_from(&ns.services[1]).is_empty());
    }

    #[test]
    fn the_same_snapshots_in_any_order_give_the_same_graph() {
        let snaps = full_mesh(4);
        let mut shuffled = snaps.clone();
        shuffled.reverse();
        for s in &mut shuffled {
            s.peers.reverse();
        }
        let expect = Expectation::full_mesh_of(&snaps);
        assert_eq!(compute(&snaps, &expect), compute(&shuffled, &expect));
    }

    #[test]
    fn a_one_way_link_is_a_finding_in_a_full_mesh_and_a_note_otherwise() {
        let mut snaps: Vec<ClusterSnapshot> = (1..=2).map(healthy).collect();
        link(&mut snaps, 0, 1);
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::OneWay]);
        let f = only(&g, FindingKind::OneWay);
        assert_eq!(clusters(f), ["c1", "c2"]);
        assert_eq!(
            f.message,
            "c1 links to c2, but c2 holds no peer gateway for c1, so their workloads cannot reach c1's services. \
             Link c2 → c1 (or link each pair both ways)."
        );
        let l = edge(&g, "c1", "c2");
        assert_eq!(l.health, Health::Degraded);
        assert_eq!(
            l.reasons,
            [
                "one-way: c2 holds no peer gateway for c1, so c2's workloads cannot reach c1's services"
            ]
        );
        assert!(g.link(&name("c2"), &name("c1")).is_none());
        // c1 reaches c2's exported services; c2 does not reach c1's.
        assert_eq!(cluster(&g, "c2").exports_reachable_from, [name("c1")]);
        assert_eq!(cluster(&g, "c1").exports_reachable_from, []);

        // Linking one way on purpose (`--from c1 --to c2`): a note on the edge, not a finding.
        let g = compute(&snaps, &Expectation::default());
        assert_eq!(g.findings, []);
        let l = edge(&g, "c1", "c2");
        assert_eq!(l.health, Health::Healthy);
        assert_eq!(l.reasons.len(), 1);
        assert!(l.reasons[0].starts_with("one-way: c2 holds no peer gateway for c1"));
    }

    #[test]
    fn a_peer_gateway_dialing_an_old_address_is_stale_and_names_the_new_one() {
        let mut snaps = full_mesh(3);
        snaps[1].eastwest.as_mut().expect("ew").addresses = vec!["192.168.9.9".into()];
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::StaleAddress]);
        let f = only(&g, FindingKind::StaleAddress);
        assert_eq!(clusters(f), ["c2", "c1", "c3"]);
        assert_eq!(
            f.severity,
            Health::Degraded,
            "still connected: not failing yet"
        );
        assert_eq!(
            f.message,
            "c2's east-west gateway is now at 192.168.9.9, but peer gateways for it use an old address (c1 and c3 \
             dial 10.0.0.3). Re-link c1 and c3 → c2 so they carry the current address (with automatic peering, check \
             that the management plane redistributed c2's peer gateway)."
        );
        let l = edge(&g, "c1", "c2");
        assert_eq!(l.health, Health::Degraded);
        assert_eq!(
            (l.address.as_deref(), l.expected_address.as_deref()),
            (Some("10.0.0.3"), Some("192.168.9.9"))
        );
        assert_eq!(
            l.reasons,
            ["stale address: dials 10.0.0.3, but c2's east-west address is now 192.168.9.9"]
        );
        assert_eq!(edge(&g, "c2", "c1").health, Health::Healthy);

        // An address override is what peers must dial (§1.3): a gateway dialing it is not stale.
        let mut snaps = full_mesh(2);
        let ew = snaps[1].eastwest.as_mut().expect("ew");
        ew.address_override = Some("10.0.0.3".into());
        ew.addresses = vec!["172.18.0.5".into()];
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(g.findings, []);
    }

    #[test]
    fn a_stale_link_that_lost_its_connection_fails() {
        let mut snaps = full_mesh(2);
        snaps[1].eastwest.as_mut().expect("ew").addresses = vec!["192.168.9.9".into()];
        peer(&mut snaps, 0, "c2").conditions = vec![cond(
            "gloo.solo.io/PeerConnected",
            "False",
            "Pending",
            "not connected to peer",
        )];
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        // The stale address explains the failure: one finding, not two.
        assert_eq!(kinds(&g), [FindingKind::StaleAddress]);
        assert_eq!(g.findings[0].severity, Health::Failing);
        let l = edge(&g, "c1", "c2");
        assert_eq!(l.health, Health::Failing);
        assert_eq!(
            l.reasons,
            [
                "PeerConnected is False (Pending): not connected to peer",
                "stale address: dials 10.0.0.3, but c2's east-west address is now 192.168.9.9",
            ]
        );
        assert_eq!(cluster(&g, "c2").exports_reachable_from, []);
    }

    #[test]
    fn a_cluster_with_another_root_fails_its_links_and_is_told_to_reissue_from_the_shared_root() {
        let mut snaps = full_mesh(3);
        snaps[2].root_fingerprint = Some(OTHER_ROOT.into());
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::RootMismatch]);
        let f = only(&g, FindingKind::RootMismatch);
        assert_eq!(clusters(f), ["c3", "c1", "c2"]);
        assert_eq!(f.severity, Health::Failing);
        assert_eq!(
            f.message,
            "c3 (root bbbbbbbbbbbbbbbb…) does not share the root of trust of the clusters it is linked with, c1 and c2 \
             (root aaaaaaaaaaaaaaaa…), so their workloads cannot verify each other. Re-issue c3's intermediate CA (the \
             cacerts Secret in istio-system) from the shared root aaaaaaaaaaaaaaaa…, then restart istiod on c3."
        );
        for (from, to) in [("c1", "c3"), ("c3", "c1"), ("c2", "c3"), ("c3", "c2")] {
            let l = edge(&g, from, to);
            assert_eq!(l.health, Health::Failing, "{from}->{to}");
            assert!(
                l.reasons[0].starts_with("root mismatch: "),
                "{:?}",
                l.reasons
            );
        }
        assert_eq!(edge(&g, "c1", "c2").health, Health::Healthy);
        // A failing link does not carry services.
        assert_eq!(cluster(&g, "c3").exports_reachable_from, []);
        assert_eq!(cluster(&g, "c1").exports_reachable_from, [name("c2")]);
    }

    #[test]
    fn two_clusters_with_two_roots_are_told_to_choose_one() {
        let mut snaps = full_mesh(2);
        snaps[1].root_fingerprint = Some(OTHER_ROOT.into());
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        let f = only(&g, FindingKind::RootMismatch);
        assert_eq!(clusters(f), ["c1", "c2"]);
        assert_eq!(
            f.message,
            "Linked clusters hold different roots of trust, c1 (root aaaaaaaaaaaaaaaa…), c2 (root bbbbbbbbbbbbbbbb…), and \
             none is held by most clusters, so their workloads cannot verify each other. Choose one root, re-issue \
             every other cluster's intermediate CA (the cacerts Secret in istio-system) from it, then restart istiod \
             there."
        );
    }

    #[test]
    fn a_peer_gateway_recording_another_trust_domain_fails_the_link() {
        let mut snaps = full_mesh(2);
        peer(&mut snaps, 0, "c2").trust_domain = Some("cluster.local".into());
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::TrustDomainMismatch]);
        let f = &g.findings[0];
        assert_eq!(clusters(f), ["c2", "c1"]);
        assert_eq!(
            f.message,
            "The peer gateways for c2 record the wrong trust domain (c1 \"cluster.local\"), but c2's trust domain is \
             \"c2\": ztunnel then rejects c2's workloads (\"peer did not present the expected SAN\"). Re-link c1 → c2, \
             which rebuilds the gateways from c2's mesh config."
        );
        let l = edge(&g, "c1", "c2");
        assert_eq!(l.health, Health::Failing);
        assert_eq!(
            l.reasons,
            [
                "trust domain mismatch: the gateway records \"cluster.local\", but c2's trust domain is \"c2\""
            ]
        );
        assert_eq!(edge(&g, "c2", "c1").health, Health::Healthy);
    }

    #[test]
    fn linked_clusters_on_different_minor_versions_are_skewed_and_the_rule_is_said() {
        let mut snaps = full_mesh(3);
        snaps[2].smc.as_mut().expect("smc").version = Some("1.27.3".into());
        // A different patch of the same minor is no skew.
        snaps[1].smc.as_mut().expect("smc").version = Some("1.28.2".into());
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::VersionSkew]);
        let f = &g.findings[0];
        assert_eq!(clusters(f), ["c3", "c1", "c2"]);
        assert_eq!(f.severity, Health::Degraded);
        assert_eq!(
            f.message,
            "c3 runs Istio 1.27.3 but is linked with clusters on another minor version (c1 and c2 run 1.28). The rule \
             is the same Istio minor version on every cluster of the mesh: upgrade c3 to 1.28 (the \
             ServiceMeshController's version)."
        );
        let l = edge(&g, "c3", "c1");
        assert_eq!(l.health, Health::Degraded);
        assert_eq!(
            l.reasons,
            [
                "version skew: c3 runs 1.27.3, c1 runs 1.28.1-patch0; keep the same Istio minor version on every cluster"
            ]
        );
        assert_eq!(edge(&g, "c1", "c2").health, Health::Healthy);
        // Skew degrades, it does not cut: services stay reachable.
        assert_eq!(
            cluster(&g, "c3").exports_reachable_from,
            [name("c1"), name("c2")]
        );
    }

    #[test]
    fn a_pair_linked_in_neither_direction_is_a_missing_link() {
        let mut snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
        for (a, b) in [(0, 1), (1, 0), (1, 2), (2, 1)] {
            link(&mut snaps, a, b);
        }
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::MissingLink]);
        let f = &g.findings[0];
        assert_eq!(clusters(f), ["c1", "c3"]);
        assert_eq!(
            f.message,
            "c1 and c3 are expected in the full mesh but are not linked in either direction, so neither reaches the \
             other's services. Link them both ways (Setup → Link c1 ⇄ c3)."
        );
        // Not expected in a full mesh: no finding.
        let g = compute(&snaps, &Expectation::default());
        assert_eq!(g.findings, []);
    }

    #[test]
    fn links_left_out_on_purpose_at_setup_are_not_findings_but_chosen_ones_missing_are() {
        // Chosen at setup: c1 ⇄ c2 both ways, c3 → c1 one way; nothing between c2 and c3.
        let mut snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
        for (a, b) in [(0, 1), (1, 0), (2, 0)] {
            link(&mut snaps, a, b);
        }
        let names3: Vec<ClusterName> = snaps.iter().map(|s| s.name.clone()).collect();
        let meant = [("c1", "c2"), ("c2", "c1"), ("c3", "c1")];
        let mut expect = Expectation::full_mesh_of(&snaps);
        expect.choose(&names3, |a, b| meant.contains(&(a.as_str(), b.as_str())));
        let g = compute(&snaps, &expect);
        assert_eq!(g.findings, []);
        // The one-way link is healthy: its other direction was never meant.
        assert_eq!(edge(&g, "c3", "c1").health, Health::Healthy);
        // Under the full-mesh rule alone the same state is a one-way link and a missing pair.
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::MissingLink, FindingKind::OneWay]);

        // The chosen one-way link deleted: reported, in the words of the choice.
        snaps[2].peers.clear();
        let g = compute(&snaps, &expect);
        assert_eq!(kinds(&g), [FindingKind::NotMeshed]);
        assert_eq!(clusters(&g.findings[0]), ["c3"]);
        assert!(
            g.findings[0]
                .message
                .starts_with("c3 is meant to be linked with c1 (as chosen at setup) but is linked with none of them."),
            "{}",
            g.findings[0].message
        );
        // A fourth cluster set up later and never chosen with the others falls back to the full-mesh rule.
        link(&mut snaps, 2, 0);
        snaps.push(healthy(4));
        expect.full_mesh.insert(name("c4"));
        link(&mut snaps, 3, 0);
        link(&mut snaps, 0, 3);
        let g = compute(&snaps, &expect);
        let missing: Vec<Vec<&str>> = g
            .findings
            .iter()
            .filter(|f| f.kind == FindingKind::MissingLink)
            .map(clusters)
            .collect();
        assert_eq!(missing, [["c2", "c4"], ["c3", "c4"]]);
    }

    #[test]
    fn a_chosen_pair_linked_in_neither_direction_says_it_was_chosen() {
        let mut snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
        for (a, b) in [(0, 1), (1, 0), (1, 2), (2, 1)] {
            link(&mut snaps, a, b);
        }
        let all: Vec<ClusterName> = snaps.iter().map(|s| s.name.clone()).collect();
        let mut expect = Expectation::default();
        // c1 → c3 one way was chosen, and is missing.
        expect.choose(&all, |a, b| a.as_str() != "c3" || b.as_str() != "c1");
        let g = compute(&snaps, &expect);
        assert_eq!(kinds(&g), [FindingKind::MissingLink]);
        assert_eq!(
            g.findings[0].message,
            "c1 is meant to hold a peer gateway for c3 (a one-way link chosen at setup) but holds none, so c1's \
             workloads cannot reach c3's services. Link c1 → c3 (Setup → Link)."
        );
    }

    #[test]
    fn a_cluster_linked_with_none_of_the_mesh_is_one_finding_not_one_per_pair() {
        let mut snaps = full_mesh(3);
        snaps.push(healthy(4));
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::NotMeshed]);
        let f = &g.findings[0];
        assert_eq!(clusters(f), ["c4"]);
        assert!(
            f.message
                .starts_with("c4 is expected in the full mesh but is linked with none of the other 3 clusters. Link it both ways"),
            "{}",
            f.message
        );
        // Nothing linked at all: one finding for the whole mesh.
        let snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::NotMeshed]);
        assert_eq!(clusters(&g.findings[0]), ["c1", "c2", "c3"]);
        assert!(g.findings[0].message.starts_with(
            "None of the 3 clusters expected in the full mesh (c1, c2 and c3) are linked."
        ));
    }

    #[test]
    fn an_unreachable_cluster_is_unknown_with_its_error_and_its_links_keep_their_last_state() {
        let mut snaps = full_mesh(2);
        snaps[1].unreachable = Some("connection refused".into());
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::Unreachable]);
        let f = &g.findings[0];
        assert_eq!(clusters(f), ["c2"]);
        assert_eq!(f.severity, Health::Unknown);
        assert_eq!(
            f.message,
            "c2 cannot be reached (connection refused): it is shown as last seen, and its links may have changed \
             since. Check its address and credentials in Meshdeck (Clusters → Re-test)."
        );
        let c2 = cluster(&g, "c2");
        assert!(!c2.reachable);
        assert_eq!(c2.health, Health::Unknown);
        assert_eq!(
            c2.reasons,
            ["unreachable: connection refused; showing the state last seen"]
        );
        // Its parts are as last seen.
        assert_eq!(c2.operator.state, Health::Healthy);
        for (from, to, why) in [
            (
                "c1",
                "c2",
                "c2 is unreachable: its east-west address and root as last seen",
            ),
            (
                "c2",
                "c1",
                "c2 is unreachable: its peer gateway as last seen",
            ),
        ] {
            let l = edge(&g, from, to);
            assert_eq!(l.health, Health::Healthy);
            assert_eq!(l.reasons, [why]);
        }
    }

    #[test]
    fn absent_peering_conditions_are_pending_not_connected() {
        let mut snaps = full_mesh(2);
        // Only what the Istio gateway controller writes: Programmed=True says nothing about peering (§2.3).
        peer(&mut snaps, 0, "c2").conditions = connected()[..2].to_vec();
        // One condition still on its way.
        peer(&mut snaps, 1, "c1")
            .conditions
            .retain(|c| c.type_ != "gloo.solo.io/PeerDataPlaneProgrammed");
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(g.findings, []);
        let l = edge(&g, "c1", "c2");
        assert_eq!(l.health, Health::Degraded);
        assert_eq!(
            l.reasons,
            ["pending: no peering conditions reported yet (not connected)"]
        );
        let l = edge(&g, "c2", "c1");
        assert_eq!(l.health, Health::Degraded);
        assert_eq!(l.reasons, ["pending: waiting for PeerDataPlaneProgrammed"]);
        // Pending links do not carry services yet.
        assert_eq!(cluster(&g, "c1").exports_reachable_from, []);
        assert_eq!(cluster(&g, "c2").exports_reachable_from, []);
    }

    #[test]
    fn a_false_peering_condition_fails_the_link_and_is_listed_with_its_reason() {
        let mut snaps = full_mesh(3);
        for from in [0, 2] {
            peer(&mut snaps, from, "c2").conditions = vec![
                cond(
                    "gloo.solo.io/PeerConnected",
                    "False",
                    "Pending",
                    "not connected to peer",
                ),
                cond(
                    "gloo.solo.io/PeeringSucceeded",
                    "Unknown",
                    "Pending",
                    "network not yet synced",
                ),
            ];
        }
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        assert_eq!(kinds(&g), [FindingKind::LinkFailing]);
        let f = &g.findings[0];
        assert_eq!(clusters(f), ["c2", "c1", "c3"]);
        assert_eq!(
            f.message,
            "Peering with c2 fails from c1 and c3 (c1: PeerConnected is False (Pending): not connected to peer; c3: \
             PeerConnected is False (Pending): not connected to peer). Check that c2's east-west gateway is reachable \
             from c1 and c3, that c2's istiod runs, and that the licenses allow multicluster; then look at istiod's log \
             in c1 and c3."
        );
        assert_eq!(edge(&g, "c1", "c2").health, Health::Failing);

        // An invalid gateway is rebuilt by linking again.
        peer(&mut snaps, 0, "c2").conditions = vec![cond(
            "gloo.solo.io/PeerConnected",
            "False",
            "Invalid",
            "no network started, encountered error validating gateway: no spec.addresses found in gateway",
        )];
        let g = compute(&snaps, &Expectation::full_mesh_of(&snaps));
        let m = &only(&g, FindingKind::LinkFailing).message;
        assert!(
            m.contains(
                "Re-link c1 → c2: an invalid peer gateway is rebuilt from c2's live state. Check that c2's east-west \
                 gateway is reachable from c3,"
            ),
            "{m}"
        );
    }

    #[test]
    fn peer_gateways_resolve_by_cluster_then_network_and_unknown_or_local_ones_are_handled() {
        let mut snaps: Vec<ClusterSnapshot> = (1..=3).map(healthy).collect();
        snaps[1].network = Some("net-b".into());
        // Older gateway, network label only: resolved through the network of c2.
        let mut old = PeerGatewayState {
            name: "istio-remote-peer-net-b".into(),
            cluster_label: None,
            network_label: Some("net-b".into()),
            trust_domain: Some("c2".into()),
            address: Some(address(2)),
            conditions: connected(),
        };
        snaps[0].peers.push(old.clone());
        // Automatic peering's local copy: ignored, as istiod does.
        old.name = "istio-remote-peer-c1".into();
        old.cluster_label = Some("c1".into());
        snaps[0].peers.push(old.clone());
        // A peer Meshdeck does not manage.
        old.name = "istio-remote-peer-c9".into();
        old.cluster_label = Some("c9".into());
        snaps[0].peers.push(old);
        let g = compute(&snaps, &Expectation::default());
        assert_eq!(
            g.links.iter().map(LinkEdge::id).collect::<Vec<_>>(),
            ["c1->c2"]
        );
        assert_eq!(kinds(&g), [FindingKind::UnknownPeer]);
        assert_eq!(
            g.findings[0].message,
            "c1 holds peer gateway istio-remote-peer-c9 for cluster \"c9\", which Meshdeck does not manage: register c9 \
             in Meshdeck to see this link, or, if that cluster is gone, delete the gateway (gateway \
             istio-remote-peer-c9 in istio-eastwest on c1)."
        );
    }

    #[test]
    fn drift_shows_once_compared_and_degrades_the_cluster_until_re_applied() {
        let g = compute(&[healthy(1)], &Expectation::default());
        let c = cluster(&g, "c1");
        assert_eq!((c.health, c.drift.as_ref()), (Health::Healthy, None));
        let mut s = healthy(1);
        s.drift = Some(vec!["ServiceMeshController managed-istio".into()]);
        let g = compute(&[s.clone()], &Expectation::default());
        let c = cluster(&g, "c1");
        let d = c.drift.as_ref().expect("drift");
        assert_eq!(d.state, Health::Degraded);
        assert!(
            d.detail.starts_with("1 object differs from"),
            "{}",
            d.detail
        );
        assert_eq!(c.health, Health::Degraded);
        assert!(
            c.reasons.iter().any(|r| r.starts_with("drift: ")),
            "{:?}",
            c.reasons
        );
        s.drift = Some(vec![]);
        let g = compute(&[s], &Expectation::default());
        let c = cluster(&g, "c1");
        assert_eq!(c.drift.as_ref().map(|d| d.state), Some(Health::Healthy));
        assert_eq!(c.health, Health::Healthy);
    }

    #[test]
    fn cluster_parts_say_what_is_missing_or_broken_worst_first() {
        let mut s = healthy(1);
        s.operator = None;
        s.smc.as_mut().expect("smc").conditions = vec![cond(
            "ControlPlaneDeployed",
            "False",
            "DeploymentFailed",
            "istiod did not become ready",
        )];
        s.ztunnel = Some(WorkloadState {
            desired: 3,
            ready: 2,
        });
        s.eastwest.as_mut().expect("ew").programmed = Some(cond(
            "Programmed",
            "False",
            "AddressNotAssigned",
            "address pending for hostname \"istio-eastwest.istio-eastwest.svc.cluster.local\"",
        ));
        s.eastwest.as_mut().expect("ew").addresses.clear();
        s.license = LicenseState::Invalid("license expired".into());
        s.root_fingerprint = None;
        let g = compute(&[s], &Expectation::default());
        let c = cluster(&g, "c1");
        assert_eq!(c.health, Health::Failing);
        assert_eq!(c.operator.state, Health::Failing);
        assert_eq!(
            c.control_plane.detail,
            "ServiceMeshController ControlPlaneDeployed is False (DeploymentFailed): istiod did not become ready; istiod: \
             1 of 1 pods ready"
        );
        assert_eq!(c.ztunnel.state, Health::Degraded);
        assert_eq!(c.license.state, Health::Failing);
        let ew = c.eastwest.as_ref().expect("ew");
        assert_eq!(
            (ew.state, ew.programmed, ew.address.as_deref()),
            (Health::Failing, false, None)
        );
        assert!(
            ew.detail.contains(
                "set an address override (istio.io/expose-istiod-address) or use NodePort"
            )
        );
        let heads: Vec<&str> = c
            .reasons
            .iter()
            .map(|r| r.split(':').next().unwrap_or_default())
            .collect();
        assert_eq!(
            heads,
            [
                "operator",
                "control plane",
                "license",
                "east-west gateway",
                "root of trust",
                "ztunnel/CNI"
            ]
        );
    }

    #[test]
    fn services_are_exported_by_their_own_label_or_their_namespace() {
        let l = |kv: &[(&str, &str)]| -> BTreeMap<String, String> {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let svc = |n: &str, labels| ServiceState {
            name: n.into(),
            labels,
        };
        let ns = NamespaceState {
            name: "shop".into(),
            labels: l(&[
                ("istio.io/dataplane-mode", "ambient"),
                (SERVICE_SCOPE_LABEL, "global"),
            ]),
            services: vec![],
        };
        assert!(ns.is_meshed());
        assert!(ns.exports(&svc("cart", BTreeMap::new())));
        assert!(!ns.exports(&svc("admin", l(&[(SERVICE_SCOPE_LABEL, "cluster")]))));
        let plain = NamespaceState {
            labels: l(&[("istio.io/rev", "gloo")]),
            ..ns.clone()
        };
        assert!(plain.is_meshed());
        assert!(!plain.exports(&svc("cart", BTreeMap::new())));
        assert!(plain.exports(&svc("cart", l(&[(SERVICE_SCOPE_LABEL, "global-only")]))));
        assert!(
            !NamespaceState {
                labels: l(&[("istio-injection", "disabled")]),
                ..ns
            }
            .is_meshed()
        );
    }

    #[test]
    fn gateways_are_read_from_their_objects() {
        let gw: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {
                "name": "istio-remote-peer-c2", "namespace": "istio-eastwest",
                "labels": {"topology.istio.io/network": "c2", "topology.istio.io/cluster": "c2"},
                "annotations": {"gateway.istio.io/trust-domain": "c2", "gateway.istio.io/service-account": "istio-eastwest"}
            },
            "spec": {"gatewayClassName": "istio-remote", "addresses": [{"type": "IPAddress", "value": "10.0.0.3"}]},
            "status": {"conditions": [{"type": "gloo.solo.io/PeerConnected", "status": "True", "reason": "Programmed", "message": ""}]}
        }))
        .expect("gateway");
        let p = PeerGatewayState::from_gateway(&gw).expect("peer");
        assert_eq!(p.name, "istio-remote-peer-c2");
        assert_eq!(
            (
                p.cluster_label.as_deref(),
                p.network_label.as_deref(),
                p.trust_domain.as_deref(),
                p.address.as_deref()
            ),
            (Some("c2"), Some("c2"), Some("c2"), Some("10.0.0.3"))
        );
        assert_eq!(
            p.conditions,
            [cond("gloo.solo.io/PeerConnected", "True", "Programmed", "")]
        );
        assert_eq!(EastWestState::from_gateway(&gw), None);

        let ew: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {
                "name": "istio-eastwest", "namespace": "istio-eastwest",
                "labels": {"topology.istio.io/cluster": "c1"},
                "annotations": {"peering.solo.io/data-plane-service-type": "nodeport"}
            },
            "spec": {"gatewayClassName": "istio-eastwest"},
            "status": {
                "addresses": [{"type": "IPAddress", "value": "172.18.0.4"}],
                "conditions": [{"type": "Programmed", "status": "True", "reason": "Programmed", "message": "Resource programmed"}]
            }
        }))
        .expect("gateway");
        let e = EastWestState::from_gateway(&ew).expect("east-west");
        assert_eq!(e.kind, EastWestKind::NodePort);
        assert_eq!(e.addresses, ["172.18.0.4"]);
        assert_eq!(e.address_override, None);
        assert_eq!(e.programmed.map(|c| c.status).as_deref(), Some("True"));
        assert_eq!(e.cluster_label.as_deref(), Some("c1"));
        assert!(PeerGatewayState::from_gateway(&ew).is_none());
    }

    #[test]
    fn the_diff_of_two_computed_graphs_applied_to_the_first_gives_the_second() {
        let snaps = full_mesh(4);
        let expect = Expectation::full_mesh_of(&snaps);
        let old = compute(&snaps, &expect);
        assert!(diff(&old, &compute(&snaps, &expect)).is_empty());

        // One link starts failing, one cluster leaves, one arrives.
        let mut changed = snaps.clone();
        peer(&mut changed, 0, "c2").conditions[2] = cond(
            "gloo.solo.io/PeerConnected",
            "False",
            "Pending",
            "not connected to peer",
        );
        changed.retain(|s| s.name.as_str() != "c4");
        for s in &mut changed {
            s.peers.retain(|p| p.cluster_label.as_deref() != Some("c4"));
        }
        changed.push(healthy(5));
        let new = compute(&changed, &expect);
        let update = diff(&old, &new);
        assert_eq!(update.remove_clusters, [name("c4")]);
        assert_eq!(
            update
                .upsert_clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["c1", "c2", "c3", "c5"],
            "c1..c3 lose c4 from where their services are reachable; c2 also loses c1"
        );
        assert_eq!(
            update
                .upsert_links
                .iter()
                .map(LinkEdge::id)
                .collect::<Vec<_>>(),
            ["c1->c2"]
        );
        assert_eq!(update.remove_links.len(), 6);
        assert!(update.findings.is_some());
        let mut got = old.clone();
        apply(&mut got, update);
        assert_eq!(got, new);

        // A one-link change is a one-link update.
        let mut one = snaps.clone();
        peer(&mut one, 2, "c1").conditions.truncate(4);
        let update = diff(&old, &compute(&one, &expect));
        assert_eq!(
            update
                .upsert_links
                .iter()
                .map(LinkEdge::id)
                .collect::<Vec<_>>(),
            ["c3->c1"]
        );
        assert_eq!(
            update
                .upsert_clusters
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["c1"]
        );
        assert_eq!(
            (
                update.remove_clusters.len(),
                update.remove_links.len(),
                update.findings
            ),
            (0, 0, None)
        );
    }
}
