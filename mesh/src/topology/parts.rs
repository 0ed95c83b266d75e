//! Each cluster's parts and health, and the peering state of a peer gateway's conditions.

use std::collections::BTreeMap;

use crate::ids::graph::{
    ClusterNode, ConditionView, EastWestView, Health, NamespaceNode, Part, ServiceNode,
};
use crate::ids::{ClusterName, version_rule};

use super::model::*;

/// Problems noted while building, each with the health it implies.
#[derive(Default)]
pub(super) struct Reasons(Vec<(Health, String)>);

impl Reasons {
    pub(super) fn add(&mut self, health: Health, reason: impl Into<String>) {
        self.0.push((health, reason.into()));
    }

    pub(super) fn health(&self) -> Health {
        self.0.iter().fold(Health::Healthy, |h, (r, _)| h.worst(*r))
    }

    /// Worst first; equal ones in the order noted.
    pub(super) fn into_lines(mut self) -> Vec<String> {
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

pub(super) fn cluster_node(
    s: &ClusterSnapshot,
    exports_reachable_from: Vec<ClusterName>,
) -> ClusterNode {
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
pub(super) fn peering_state(conditions: &[ConditionView]) -> (Health, bool, Option<String>) {
    // Read once per link of every graph computed: the connected case allocates nothing.
    let found = PEER_CONDITIONS.map(|t| conditions.iter().find(|c| c.type_ == t));
    if found.iter().all(Option::is_none) {
        return (
            Health::Degraded,
            false,
            Some("pending: no peering conditions reported yet (not connected)".into()),
        );
    }
    if let Some(c) = found.iter().flatten().find(|c| c.status == "False") {
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
    if found.iter().all(|c| c.is_some_and(|c| c.status == "True")) {
        return (Health::Healthy, true, None);
    }
    let waiting: Vec<&str> = PEER_CONDITIONS
        .iter()
        .zip(found)
        .filter(|(_, c)| c.is_none_or(|c| c.status != "True"))
        .map(|(t, _)| t.trim_start_matches("gloo.solo.io/"))
        .collect();
    (
        Health::Degraded,
        false,
        Some(format!("pending: waiting for {}", waiting.join(", "))),
    )
}

/// "c1", "c1 and c2", "c1, c2 and c3", "c1, c2, c3, c4, c5 and 7 more".
pub(super) fn names<'a>(list: impl IntoIterator<Item = &'a ClusterName>) -> String {
    let v: Vec<&str> = list.into_iter().map(ClusterName::as_str).collect();
    match v.len() {
        0 => String::new(),
        1 => v[0].to_string(),
        n if n <= 6 => format!("{} and {}", v[..n - 1].join(", "), v[n - 1]),
        n => format!("{} and {} more", v[..5].join(", "), n - 5),
    }
}

/// The value most clusters have; a tie goes to the greatest (the newest version).
pub(super) fn most_common<T: Ord + Clone>(values: impl IntoIterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
        .map(|(v, _)| v.clone())
}
