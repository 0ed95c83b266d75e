//! Preflight: what Meshdeck checks in each cluster before it changes anything (mesh-spec.md §9, §10.1), each
//! finding pass / warn / fail with what to do. Read-only, except one probe: to learn whether load-balancer
//! addresses get assigned, it creates a Service `meshdeck-lb-probe` of type LoadBalancer in
//! `istio-eastwest` (the namespace the east-west gateway will use, created if missing and kept, so a setup
//! right after does not race its deletion) and deletes the Service again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Secret, Service};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::checks::Status;
use crate::gateway_api::Action;
use crate::ids::ClusterName;
use crate::objects::{DataPlane, EASTWEST_NAMESPACE, gateway_resource};
use crate::setup::{ClusterSetup, Settings, Target};

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable key, e.g. "permissions".
    pub key: String,
    pub title: String,
    pub status: Status,
    pub message: String,
    pub remediation: Option<String>,
}

fn finding(key: &str, title: &str, status: Status, message: impl Into<String>) -> Finding {
    Finding {
        key: key.into(),
        title: title.into(),
        status,
        message: message.into(),
        remediation: None,
    }
}

impl Finding {
    fn fix(mut self, r: impl Into<String>) -> Self {
        if self.status != Status::Pass {
            self.remediation = Some(r.into());
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterPreflight {
    pub cluster: ClusterName,
    pub findings: Vec<Finding>,
}

impl ClusterPreflight {
    pub fn blocked(&self) -> bool {
        self.findings.iter().any(|f| f.status == Status::Fail)
    }

    pub fn get(&self, key: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.key == key)
    }
}

pub use crate::ids::{istio_version, nodeport_rule, upgrade_rule, version_rule};

/// Checks across the selection: unique cluster and network names, one Istio minor everywhere.
pub fn fleet(
    clusters: &[ClusterSetup],
    settings: &Settings,
) -> BTreeMap<ClusterName, Vec<Finding>> {
    let mut out: BTreeMap<ClusterName, Vec<Finding>> = BTreeMap::new();
    let mut networks: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for c in clusters {
        networks
            .entry(c.network.as_str())
            .or_default()
            .push(c.name.as_str());
    }
    let minors: BTreeMap<(u64, u64), Vec<&str>> =
        clusters.iter().fold(BTreeMap::new(), |mut m, c| {
            let v = c.mesh_spec(settings).version;
            if let Some((a, b, _)) = istio_version(&v) {
                m.entry((a, b))
                    .or_insert_with(Vec::new)
                    .push(c.name.as_str());
            }
            m
        });
    for c in clusters {
        let f = out.entry(c.name.clone()).or_default();
        let dup = clusters.iter().filter(|o| o.name == c.name).count() > 1;
        f.push(
            finding(
                "names",
                "Unique cluster name",
                if dup { Status::Fail } else { Status::Pass },
                if dup { format!("{} is chosen twice", c.name) } else { format!("{} is unique", c.name) },
            )
            .fix("Each cluster needs its own name: it becomes the trust domain and the peer gateway's name."),
        );
        let same_net = &networks[c.network.as_str()];
        f.push(
            finding(
                "network",
                "Unique network",
                if same_net.len() > 1 { Status::Fail } else { Status::Pass },
                if same_net.len() > 1 {
                    format!("network {} is shared by {}: peers on one network are treated as flat, and traffic skips the gateways", c.network, same_net.join(", "))
                } else {
                    format!("network {} is unique", c.network)
                },
            )
            .fix("Give each cluster its own network name (the default is the cluster name), unless the clusters really share a flat pod network."),
        );
        let v = c.mesh_spec(settings).version;
        let rule = version_rule(&v);
        let skew = minors.len() > 1;
        f.push(match (&rule, skew) {
            (Err(e), _) => finding("istio-version", "Istio version", Status::Fail, e.clone())
                .fix("Choose a supported Solo Istio version, for example 1.28.1-patch0."),
            (Ok(()), true) => finding(
                "istio-version",
                "Istio version",
                Status::Warn,
                format!(
                    "{v}: the clusters run different Istio minors ({})",
                    minors
                        .keys()
                        .map(|(a, b)| format!("{a}.{b}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
            .fix("Use the same minor everywhere unless you are upgrading one cluster at a time."),
            (Ok(()), false) => {
                let note = if istio_version(&v).is_some_and(|x| x < (1, 27, 0)) {
                    " (the license check needs 1.27 or newer)"
                } else {
                    ""
                };
                finding(
                    "istio-version",
                    "Istio version",
                    Status::Pass,
                    format!("{v}{note}"),
                )
            }
        });
        if c.data_plane(settings) == DataPlane::NodePort {
            f.push(match nodeport_rule(&v) {
                Err(e) => finding("nodeport", "NodePort east-west (alpha)", Status::Fail, e)
                    .fix("Choose the LoadBalancer variant for this cluster, or an Istio version of 1.28 or newer."),
                Ok(()) => finding(
                    "nodeport",
                    "NodePort east-west (alpha)",
                    Status::Warn,
                    format!("{v} supports NodePort peering, which is alpha: likely to change, not fully tested, not supported for production"),
                )
                .fix("Fine for trials and cost-sensitive non-production meshes; choose LoadBalancer where support matters."),
            });
        }
    }
    out
}

/// The findings for one cluster (its own checks; add [`fleet`]'s for the selection).
#[tracing::instrument(skip_all, fields(cluster = %t.name))]
pub async fn cluster(
    t: &Target,
    c: &ClusterSetup,
    settings: &Settings,
    lb_probe: Duration,
) -> ClusterPreflight {
    let mut findings = vec![];
    let client = &t.client;
    match client.apiserver_version().await {
        Err(e) => {
            findings.push(
                finding("reachable", "Cluster reachable", Status::Fail, crate::connect::classify(&e).to_string())
                    .fix("Fix the address or credentials (Clusters → Re-test); nothing else can be checked."),
            );
            return ClusterPreflight {
                cluster: t.name.clone(),
                findings,
            };
        }
        Ok(v) => {
            let minor: u64 = v.minor.trim_end_matches('+').parse().unwrap_or(0);
            let (status, note) = match minor {
                0..=27 => (
                    Status::Fail,
                    "older than 1.28, which current Istio releases do not support",
                ),
                28..=29 => (
                    Status::Warn,
                    "near the end of Istio's support window; check the chosen Istio release's support matrix",
                ),
                _ => (Status::Pass, "supported"),
            };
            findings.push(
                finding("kubernetes", "Kubernetes version", status, format!("{}: {note}", v.git_version))
                    .fix("Upgrade the cluster, or choose an Istio release that supports this Kubernetes version."),
            );
        }
    }
    // Reviewed where this setup puts the control plane (its installNamespace), not only istio-system.
    let istio_ns = c.istio_namespace();
    let reviews = futures::future::join_all(
        crate::connect::REQUIRED
            .iter()
            .map(|p| crate::connect::review(client, p, istio_ns)),
    )
    .await;
    let missing: Vec<String> = reviews
        .iter()
        .filter_map(|r| match r {
            Ok(r) if !r.allowed => Some(format!(
                "{} — {}",
                r.permission.describe_in(istio_ns),
                r.permission.purpose
            )),
            Err(e) => Some(format!("(access review failed: {e})")),
            _ => None,
        })
        .collect();
    // Lacking rights where this setup installs the control plane, not istio-system: an onboarded account
    // given only istio-system's.
    let lacks_install_namespace = istio_ns != crate::objects::ISTIO_NAMESPACE
        && reviews.iter().any(|r| {
            matches!(r, Ok(r) if !r.allowed && r.permission.namespace_in(istio_ns) == Some(istio_ns))
        });
    // Only what an administrator holds is lacking (a cluster onboarded with least privilege): the setup can
    // go on; its Operator step stops, showing the helm command, unless the release is installed already.
    let admin_only = reviews.iter().all(|r| match r {
        Ok(r) => r.allowed || r.permission.admin_only,
        Err(_) => false,
    });
    let status = match (missing.is_empty(), admin_only) {
        (true, _) => Status::Pass,
        (false, true) => Status::Warn,
        (false, false) => Status::Fail,
    };
    findings.push(
        finding(
            "permissions",
            "Permissions",
            status,
            match status {
                Status::Pass => "every verb the setup needs is allowed".to_string(),
                Status::Warn => format!(
                    "every verb the setup needs is allowed but installing the Gloo Operator's chart, which only an \
                     administrator may do ({}): {}",
                    missing.len(),
                    missing.join("; ")
                ),
                _ => format!("missing {}: {}", missing.len(), missing.join("; ")),
            },
        )
        .fix(if status == Status::Warn {
            "If the Gloo Operator is not installed as planned yet, the Operator step stops and shows the helm command: an administrator runs it once, then retries the step.".to_string()
        } else if lacks_install_namespace {
            format!(
                "Grant these to the credentials Meshdeck uses for this cluster. A cluster onboarded with least privilege has \
                 rights in istio-system only: onboard it again (Clusters → {} → Access) with {istio_ns} among its \
                 control-plane namespaces (the cluster the console runs in: the chart's \
                 inCluster.controlPlaneNamespaces), then run the preflight again.",
                c.name
            )
        } else {
            "Grant these to the credentials Meshdeck uses for this cluster (for example bind cluster-admin for the setup), then run the preflight again.".to_string()
        }),
    );
    let (gw, istio, cacerts, legacy, lb, nodes, license) = tokio::join!(
        gateway_api(client),
        existing_istio(client, c),
        cacerts(client, c.istio_namespace()),
        legacy_secrets(client, c.istio_namespace()),
        load_balancers(client, c, settings, lb_probe),
        nodes(client, c, settings),
        license(client, settings),
    );
    findings.extend(gw);
    findings.extend(istio);
    findings.push(cacerts);
    findings.push(legacy);
    findings.push(lb);
    findings.extend(nodes);
    findings.push(license);
    if let crate::setup::Peering::Automatic { management } = &settings.peering {
        findings.push(crate::platform::automatic_peering(client, &t.name, management).await);
    }
    ClusterPreflight {
        cluster: t.name.clone(),
        findings,
    }
}

/// The label every load-balancer probe Service carries.
pub const PROBE_LABEL: &str = "meshdeck.dev/lb-probe";

fn probe_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..8)
        .map(|_| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[rng.gen_range(0..36)]))
        .collect()
}

fn read_failed(key: &str, title: &str, what: &str, e: &kube::Error) -> Finding {
    finding(
        key,
        title,
        Status::Warn,
        format!("could not read {what}: {}", crate::connect::classify(e)),
    )
    .fix("Grant read access to it, or check it by hand.")
}

async fn gateway_api(client: &Client) -> Vec<Finding> {
    let title = "Gateway API CRDs";
    let plan = match crate::gateway_api::plan(client).await {
        Ok(p) => p,
        Err(e) => {
            return vec![
                finding("gateway-api", title, Status::Warn, e.to_string())
                    .fix("Check read access to CRDs."),
            ];
        }
    };
    let mut status = Status::Pass;
    let mut notes = vec![];
    for (crd, action) in &plan.actions {
        match action {
            Action::Create | Action::Upgrade { .. } | Action::UpToDate => {}
            Action::KeepNewer { .. } | Action::KeepUnknown => status = status.max_warn(),
            Action::KeepOtherChannel { .. } => status = status.max_warn(),
        }
        if !matches!(action, Action::UpToDate) {
            notes.push(action.describe(crd));
        }
    }
    let mut out = vec![finding(
        "gateway-api",
        title,
        status,
        if notes.is_empty() { format!("{} installed", crate::gateway_api::BUNDLE_VERSION) } else { notes.join("; ") },
    )
    .fix("Meshdeck never downgrades CRDs or changes their channel: it keeps what is installed. Make sure the installed version works with the chosen Istio release.")];
    if plan.safe_upgrades_policy {
        out.push(
            finding(
                "gateway-api-vap",
                "Gateway API safe-upgrades policy",
                Status::Warn,
                format!("{} is installed (Gateway API 1.5 or newer): it refuses v1.4 CRDs", crate::gateway_api::SAFE_UPGRADES_POLICY),
            )
            .fix("Keep the newer CRDs (Meshdeck will not write older ones). If the operator hangs on this policy, see the Gateway API 1.5 upgrade notes."),
        );
    }
    out
}

trait MaxWarn {
    fn max_warn(self) -> Self;
}

impl MaxWarn for Status {
    fn max_warn(self) -> Self {
        if self == Status::Fail {
            self
        } else {
            Status::Warn
        }
    }
}

async fn existing_istio(client: &Client, c: &ClusterSetup) -> Vec<Finding> {
    let mut out = vec![];
    // Where this setup installs the control plane (its installNamespace).
    let istio_ns = c.istio_namespace();
    let ns = match Api::<Namespace>::all(client.clone())
        .get_opt(istio_ns)
        .await
    {
        Ok(ns) => ns,
        Err(e) => {
            return vec![read_failed(
                "istio",
                "Existing Istio",
                &format!("namespace {istio_ns}"),
                &e,
            )];
        }
    };
    if let Some(net) = ns
        .as_ref()
        .and_then(|n| n.labels().get("topology.istio.io/network").cloned())
        && net != c.network.as_str()
    {
        out.push(
            finding(
                "network-label",
                &format!("Network label on {istio_ns}"),
                Status::Fail,
                format!("{istio_ns} is labelled topology.istio.io/network={net}, but this setup uses {}", c.network),
            )
            .fix(format!("Use the existing network name for this cluster, or relabel {istio_ns} if nothing relies on it.")),
        );
    }
    // A control plane elsewhere: the ServiceMeshController here names another namespace (moving istiod is a
    // new installation), or an istiod runs in another namespace (a second control plane beside it).
    match crate::objects::controller_namespace(client).await {
        Ok(Some(live)) if live != istio_ns => out.push(
            finding(
                "install-namespace",
                "Install namespace",
                Status::Fail,
                format!(
                    "the ServiceMeshController here installs the control plane in {live}; this setup asks for {istio_ns}"
                ),
            )
            .fix(format!(
                "Use {live} as this cluster's install namespace, or remove the mesh from the cluster first: moving \
                 istiod, ztunnel and cacerts is a new installation."
            )),
        ),
        _ => {}
    }
    if let Ok(all) = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default().labels("app=istiod"))
        .await
    {
        let elsewhere: Vec<String> = all
            .items
            .iter()
            .filter(|d| d.namespace().as_deref() != Some(istio_ns))
            .map(|d| format!("{}/{}", d.namespace().unwrap_or_default(), d.name_any()))
            .collect();
        if !elsewhere.is_empty() {
            out.push(
                finding(
                    "install-namespace",
                    "Install namespace",
                    Status::Warn,
                    format!(
                        "istiod already runs outside {istio_ns}: {}",
                        elsewhere.join(", ")
                    ),
                )
                .fix(format!(
                    "Two control planes would both program this cluster's workloads: install into the namespace \
                     that runs istiod, or remove that installation first (not {istio_ns})."
                )),
            );
        }
    }
    let deployments = match Api::<Deployment>::namespaced(client.clone(), istio_ns)
        .list(&ListParams::default().labels("app=istiod"))
        .await
    {
        Ok(d) => d.items,
        Err(e) => {
            return vec![read_failed(
                "istio",
                "Existing Istio",
                "istiod deployments",
                &e,
            )];
        }
    };
    if deployments.is_empty() {
        out.push(finding(
            "istio",
            "Existing Istio",
            Status::Pass,
            "no istiod yet",
        ));
        return out;
    }
    let names: Vec<String> = deployments.iter().map(|d| d.name_any()).collect();
    let by_operator = names.iter().all(|n| n == "istiod-gloo");
    out.push(
        finding(
            "istio",
            "Existing Istio",
            if by_operator { Status::Pass } else { Status::Warn },
            if by_operator {
                "istiod-gloo runs: the operator already manages a mesh here (the setup will reconcile it)".to_string()
            } else {
                format!("Istio is already installed ({}): the operator aborts on conflicts by default", names.join(", "))
            },
        )
        .fix("Set onConflict: Force in the ServiceMeshController to take over the existing installation, or remove it first."),
    );
    for d in &deployments {
        let env: BTreeMap<String, String> = crate::checks::env_of(d, "discovery")
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect();
        if let Some(id) = env.get("CLUSTER_ID")
            && id != c.name.as_str()
        {
            out.push(
                finding(
                    "cluster-id",
                    "Cluster ID",
                    Status::Warn,
                    format!("the running istiod has CLUSTER_ID={id}, the setup names this cluster {}", c.name),
                )
                .fix("Use the same name as the running mesh, or expect istiod to restart with the new ID."),
            );
        }
        if env
            .get("PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES")
            .is_some_and(|v| v == "false")
        {
            out.push(
                finding(
                    "workload-entries",
                    "Workload entry selection",
                    Status::Fail,
                    "istiod runs with PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES=false, which disables peering",
                )
                .fix("Remove that variable from the istiod values."),
            );
        }
    }
    out
}

async fn cacerts(client: &Client, ns: &str) -> Finding {
    match Api::<Secret>::namespaced(client.clone(), ns)
        .get_opt("cacerts")
        .await
    {
        Ok(None) => finding(
            "cacerts",
            "Existing cacerts",
            Status::Pass,
            "none yet: Meshdeck will write it from the shared root",
        ),
        Ok(Some(s)) => {
            let fp = crate::ca::secret_root_fingerprint(&s);
            finding(
                "cacerts",
                "Existing cacerts",
                Status::Warn,
                format!(
                    "{ns}/cacerts exists (root {})",
                    fp.as_deref().map_or("unreadable".into(), crate::ca::short)
                ),
            )
            .fix("Meshdeck keeps it if it was signed by the root you choose, and stops otherwise: import that root to reuse it.")
        }
        Err(e) => read_failed(
            "cacerts",
            "Existing cacerts",
            &format!("Secret {ns}/cacerts"),
            &e,
        ),
    }
}

async fn legacy_secrets(client: &Client, ns: &str) -> Finding {
    match Api::<Secret>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels("istio/multiCluster=true"))
        .await
    {
        Ok(l) if l.items.is_empty() => finding("legacy-remote-secrets", "Legacy remote secrets", Status::Pass, "none"),
        Ok(l) => finding(
            "legacy-remote-secrets",
            "Legacy remote secrets",
            Status::Warn,
            format!(
                "{} remote secret(s) of the older multicluster model: {}",
                l.items.len(),
                l.items.iter().map(|s| s.name_any()).collect::<Vec<_>>().join(", ")
            ),
        )
        .fix("Do not mix remote secrets with peering: remove them, and set DISABLE_LEGACY_MULTICLUSTER=true in the istiod values."),
        Err(kube::Error::Api(s)) if s.code == 404 => finding("legacy-remote-secrets", "Legacy remote secrets", Status::Pass, "none"),
        Err(e) => read_failed("legacy-remote-secrets", "Legacy remote secrets", &format!("secrets in {ns}"), &e),
    }
}

async fn load_balancers(
    client: &Client,
    c: &ClusterSetup,
    settings: &Settings,
    wait: Duration,
) -> Finding {
    let key = "load-balancer";
    let title = "Load-balancer addresses";
    if c.address_override.is_some() {
        return finding(
            key,
            title,
            Status::Pass,
            "an address override is set; no load balancer needed",
        );
    }
    if c.data_plane(settings) == DataPlane::NodePort {
        return finding(
            key,
            title,
            Status::Pass,
            "NodePort peering: the gateway's address is still needed for xDS (15012)",
        );
    }
    let ns_api = Api::<Namespace>::all(client.clone());
    match ns_api.get_opt(EASTWEST_NAMESPACE).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            if let Err(e) = crate::apply::apply(client, &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": EASTWEST_NAMESPACE}}), false).await {
                return finding(key, title, Status::Warn, format!("could not create {EASTWEST_NAMESPACE} to probe: {e}"))
                    .fix("Check by hand whether Services of type LoadBalancer get an external address.");
            }
        }
        Err(e) => return read_failed(key, title, "namespaces", &e),
    }
    let svcs = Api::<Service>::namespaced(client.clone(), EASTWEST_NAMESPACE);
    // A name of its own per run: two preflights at once (two tabs, two operators) must not share, and delete,
    // each other's probe.
    let probe_name = format!("meshdeck-lb-probe-{}", probe_suffix());
    let probe = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": probe_name, "namespace": EASTWEST_NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "meshdeck", PROBE_LABEL: "true"}},
        "spec": {"type": "LoadBalancer", "ports": [{"name": "probe", "port": 15999}], "selector": {"meshdeck.dev/none": "none"}},
    });
    if let Err(e) = crate::apply::apply(client, &probe, false).await {
        return finding(
            key,
            title,
            Status::Warn,
            format!("could not create the probe Service: {e}"),
        )
        .fix("Check by hand whether Services of type LoadBalancer get an external address.");
    }
    let start = Instant::now();
    let mut address = None;
    while start.elapsed() < wait {
        if let Ok(s) = svcs.get(&probe_name).await
            && let Some(ing) = s
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|l| l.ingress)
                .and_then(|i| i.into_iter().next())
        {
            address = ing.ip.or(ing.hostname);
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The probe must not outlive the preflight: a cloud load balancer costs money. A failed delete is said.
    let left_behind = match svcs.delete(&probe_name, &DeleteParams::default()).await {
        Ok(_) => None,
        Err(kube::Error::Api(s)) if s.code == 404 => None,
        Err(e) => Some(format!(
            " The probe Service could not be deleted ({}): delete it by hand with `kubectl -n {EASTWEST_NAMESPACE} delete service {probe_name}`.",
            crate::connect::classify(&e)
        )),
    };
    if let Some(note) = left_behind {
        return finding(
            key,
            title,
            Status::Warn,
            format!(
                "{}.{note}",
                match &address {
                    Some(a) => format!("assigned ({a})"),
                    None => "no address was assigned in time".to_string(),
                }
            ),
        )
        .fix("Delete the probe Service, then run the preflight again.");
    }
    match address {
        Some(a) => {
            let hostname = a.parse::<std::net::IpAddr>().is_err();
            finding(
                key,
                title,
                Status::Pass,
                if hostname {
                    format!("assigned ({a}, a hostname: peers may wait for DNS for a few minutes after linking)")
                } else {
                    format!("assigned ({a}) within {} ms", start.elapsed().as_millis())
                },
            )
        }
        None => finding(
            key,
            title,
            Status::Fail,
            format!("a LoadBalancer Service got no address within {} s: this cluster seems to have no load-balancer controller", wait.as_secs()),
        )
        .fix("Choose NodePort peering, or set an address override (a stable IP or DNS name that reaches the east-west gateway) for this cluster."),
    }
}

/// Node labels and taints of nodes where Istio cannot run: AWS Fargate (no Istio CNI, no iptables for the
/// proxy — the guide) and virtual-kubelet nodes (ACI, AKS virtual nodes) alike.
fn virtual_node(n: &Node) -> Option<&'static str> {
    let labels = n.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    if label("eks.amazonaws.com/compute-type") == Some("fargate") {
        return Some("Fargate");
    }
    let tainted = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == "virtual-kubelet.io/provider"));
    (label("type") == Some("virtual-kubelet") || tainted).then_some("virtual")
}

/// What the nodes say: whether Istio can run on them (Fargate and virtual nodes cannot run ztunnel or the
/// CNI), and for NodePort peering, whether each has an address peers can dial.
async fn nodes(client: &Client, c: &ClusterSetup, settings: &Settings) -> Vec<Finding> {
    let nodeport = c.data_plane(settings) == DataPlane::NodePort;
    let nodes = match Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(n) => n.items,
        Err(e) if nodeport => {
            return vec![read_failed("node-addresses", "Node addresses", "nodes", &e)];
        }
        Err(e) => return vec![read_failed("nodes", "Nodes Istio can run on", "nodes", &e)],
    };
    let mut out = vec![virtual_nodes(&nodes)];
    if nodeport {
        out.push(node_addresses(&nodes));
    }
    out
}

fn virtual_nodes(nodes: &[Node]) -> Finding {
    let title = "Nodes Istio can run on";
    let found: Vec<String> = nodes
        .iter()
        .filter_map(|n| virtual_node(n).map(|kind| format!("{} ({kind})", n.name_any())))
        .collect();
    let fix = "Istio needs its CNI and iptables on the node, which AWS Fargate and virtual nodes lack: pods there \
               stay out of the mesh. Keep mesh workloads on regular nodes (node selectors, taints), and give the \
               cluster regular nodes for istiod, ztunnel and the east-west gateway.";
    if found.is_empty() {
        return finding(
            "nodes",
            title,
            Status::Pass,
            format!("{} nodes, none of them Fargate or virtual", nodes.len()),
        );
    }
    let all = found.len() == nodes.len();
    finding(
        "nodes",
        title,
        if all { Status::Fail } else { Status::Warn },
        if all {
            format!(
                "every node is one Istio cannot run on: {}",
                found.join(", ")
            )
        } else {
            format!(
                "{} of {} nodes cannot run Istio: {}",
                found.len(),
                nodes.len(),
                found.join(", ")
            )
        },
    )
    .fix(fix)
}

fn node_addresses(nodes: &[Node]) -> Finding {
    let without: Vec<String> = nodes
        .iter()
        .filter(|n| {
            !n.status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .is_some_and(|a| {
                    a.iter()
                        .any(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
                })
        })
        .map(|n| n.name_any())
        .collect();
    finding(
        "node-addresses",
        "Node addresses (NodePort)",
        if nodes.is_empty() || !without.is_empty() { Status::Fail } else { Status::Pass },
        if nodes.is_empty() {
            "no nodes".to_string()
        } else if without.is_empty() {
            format!("{} nodes have an InternalIP or ExternalIP peers can use", nodes.len())
        } else {
            format!("nodes without an address: {}", without.join(", "))
        },
    )
    .fix("NodePort peering advertises node addresses: peers must reach them on the gateway's node ports (15008, 15012).")
}

async fn license(client: &Client, settings: &Settings) -> Finding {
    match &settings.operator.license {
        crate::operator::License::Key(k) if k.trim().is_empty() => {
            finding("license", "License", Status::Fail, "no license key given")
                .fix("Paste the Solo license key, or reference a Secret that holds it.")
        }
        crate::operator::License::Key(_) => finding(
            "license",
            "License",
            Status::Pass,
            "a license key is given (the checks verify it with istiod after the install)",
        ),
        crate::operator::License::SecretRef(r) => {
            let Some((ns, name)) = r.split_once('/') else {
                return finding(
                    "license",
                    "License",
                    Status::Fail,
                    format!("{r:?} is not <namespace>/<name>"),
                )
                .fix("Reference the Secret as <namespace>/<name>.");
            };
            match Api::<Secret>::namespaced(client.clone(), ns)
                .get_opt(name)
                .await
            {
                Ok(Some(s)) => {
                    let keys: Vec<String> =
                        s.data.map(|d| d.into_keys().collect()).unwrap_or_default();
                    let ok = [
                        "license-key",
                        "gloo-mesh-license-key",
                        "gloo-trial-license-key",
                    ]
                    .iter()
                    .any(|k| keys.iter().any(|x| x == k));
                    finding(
                        "license",
                        "License",
                        if ok { Status::Pass } else { Status::Fail },
                        if ok { format!("Secret {r} holds a license key") } else { format!("Secret {r} has none of the keys license-key, gloo-mesh-license-key, gloo-trial-license-key") },
                    )
                    .fix("Put the key under license-key in that Secret.")
                }
                Ok(None) => finding(
                    "license",
                    "License",
                    Status::Fail,
                    format!("Secret {r} does not exist in this cluster"),
                )
                .fix("Create it in every cluster, or paste the key instead."),
                Err(e) => read_failed("license", "License", &format!("Secret {r}"), &e),
            }
        }
    }
}

/// The existing peer gateways not made by Meshdeck or istioctl (for example by the `peering` Helm chart),
/// which must not be mixed with Meshdeck's (§9 P16).
pub async fn foreign_peer_gateways(client: &Client) -> Vec<String> {
    Api::<DynamicObject>::all_with(client.clone(), &gateway_resource())
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=Helm"))
        .await
        .map(|l| {
            l.items
                .iter()
                .filter(|g| g.data["spec"]["gatewayClassName"] == "istio-remote")
                .map(|g| g.name_any())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], taint: Option<&str>) -> Node {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>()},
            "spec": {"taints": taint.map(|k| vec![serde_json::json!({"key": k, "effect": "NoSchedule"})]).unwrap_or_default()},
        }))
        .expect("node")
    }

    #[test]
    fn fargate_and_virtual_nodes_are_named_and_a_cluster_of_only_them_fails() {
        let regular = node("n1", &[("kubernetes.io/os", "linux")], None);
        let fargate = node(
            "fargate-1",
            &[("eks.amazonaws.com/compute-type", "fargate")],
            None,
        );
        let aci = node("virtual-node-aci", &[("type", "virtual-kubelet")], None);
        let tainted = node("vk", &[], Some("virtual-kubelet.io/provider"));
        let f = virtual_nodes(std::slice::from_ref(&regular));
        assert_eq!(f.status, Status::Pass, "{f:?}");
        let f = virtual_nodes(&[regular, fargate.clone(), aci.clone()]);
        assert_eq!(f.status, Status::Warn, "{f:?}");
        assert!(f.message.starts_with("2 of 3 nodes"), "{}", f.message);
        assert!(
            f.message.contains("fargate-1 (Fargate)")
                && f.message.contains("virtual-node-aci (virtual)")
        );
        let f = virtual_nodes(&[fargate, aci, tainted]);
        assert_eq!(f.status, Status::Fail, "{f:?}");
        assert!(f.message.contains("vk (virtual)"), "{}", f.message);
        assert!(f.remediation.is_some());
    }

    #[test]
    fn nodeport_is_alpha_and_needs_1_28() {
        let mut c = c("c1", "c1");
        c.data_plane = Some(DataPlane::NodePort);
        let mut s = settings();
        s.istio_version = "1.27.3".into();
        let f = fleet(std::slice::from_ref(&c), &s);
        let np = f[&c.name]
            .iter()
            .find(|f| f.key == "nodeport")
            .expect("nodeport");
        assert_eq!(np.status, Status::Fail, "{np:?}");
        s.istio_version = "1.28.1-patch0".into();
        let f = fleet(std::slice::from_ref(&c), &s);
        let np = f[&c.name]
            .iter()
            .find(|f| f.key == "nodeport")
            .expect("nodeport");
        assert_eq!(np.status, Status::Warn, "{np:?}");
        assert!(np.message.contains("alpha"), "{}", np.message);
        c.data_plane = Some(DataPlane::LoadBalancer);
        let f = fleet(std::slice::from_ref(&c), &s);
        assert!(f[&c.name].iter().all(|f| f.key != "nodeport"));
    }
    use crate::ids::NetworkName;

    #[test]
    fn istio_version_rules() {
        assert!(version_rule("1.28.1-patch0").is_ok());
        assert!(version_rule("1.24.3-solo").is_ok());
        assert!(version_rule("1.24.2").expect_err("old").contains("1.24.3"));
        assert!(
            version_rule("1.26.0")
                .expect_err("bad")
                .contains("1.26.1-patch0")
        );
        assert!(version_rule("1.26.0-patch3").is_err());
        assert!(version_rule("1.26.1").is_err());
        assert!(version_rule("1.26.1-solo").is_err());
        assert!(version_rule("1.26.1-patch0").is_ok(), "the guide allows it");
        assert!(version_rule("1.26.1-patch1").is_ok());
        assert!(version_rule("1.26.2").is_ok());
        assert!(upgrade_rule("1.27.3", "1.28.1-patch0").is_ok());
        assert!(upgrade_rule("1.28.1-patch0", "1.27.3").is_ok());
        assert!(
            upgrade_rule("1.26.2", "1.28.1")
                .expect_err("two minors")
                .contains("one minor at a time (e.g. 1.27.x first)")
        );
        assert!(upgrade_rule("1.27.3", "1.26.1").is_err());
        assert!(version_rule("latest").is_err());
        assert_eq!(istio_version("1.28.1-patch0"), Some((1, 28, 1)));
    }

    fn settings() -> Settings {
        Settings {
            istio_version: "1.28.1-patch0".into(),
            data_plane: DataPlane::LoadBalancer,
            peering: crate::setup::Peering::Manual { pairs: vec![] },
            operator: crate::operator::Install {
                chart: Default::default(),
                license: crate::operator::License::Key("k".into()),
                watch_namespaces: vec![],
                helm: "helm".into(),
            },
        }
    }

    fn c(name: &str, net: &str) -> ClusterSetup {
        ClusterSetup::new(
            ClusterName::new(name).expect("n"),
            NetworkName::new(net).expect("n"),
        )
    }

    #[test]
    fn shared_networks_and_mixed_minors_are_found() {
        let mut clusters = vec![c("a", "n1"), c("b", "n1"), c("d", "n2")];
        clusters[2].mesh.version = "1.27.3".into();
        let f = fleet(&clusters, &settings());
        let a = &f[&ClusterName::new("a").expect("a")];
        let net = a.iter().find(|x| x.key == "network").expect("network");
        assert_eq!(net.status, Status::Fail);
        assert!(net.message.contains("a, b"));
        let ver = a
            .iter()
            .find(|x| x.key == "istio-version")
            .expect("version");
        assert_eq!(ver.status, Status::Warn);
        let d = &f[&ClusterName::new("d").expect("d")];
        assert_eq!(
            d.iter().find(|x| x.key == "network").map(|x| x.status),
            Some(Status::Pass)
        );
    }

    #[test]
    fn a_bad_version_fails_for_every_cluster() {
        let mut s = settings();
        s.istio_version = "1.26.0".into();
        let f = fleet(&[c("a", "a")], &s);
        let v = f
            .values()
            .next()
            .expect("one")
            .iter()
            .find(|x| x.key == "istio-version")
            .expect("v")
            .clone();
        assert_eq!(v.status, Status::Fail);
        assert!(v.remediation.is_some());
    }
}
