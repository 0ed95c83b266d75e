//! What a cluster already has that a setup must fit with or must not clash with: the Gateway API CRDs, an
//! existing Istio, `cacerts`, legacy secrets, peer gateways made by others.

use super::*;

pub(super) async fn gateway_api(client: &Client) -> Vec<Finding> {
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

pub(super) async fn existing_istio(client: &Client, c: &ClusterSetup) -> Vec<Finding> {
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

pub(super) async fn cacerts(client: &Client, ns: &str) -> Finding {
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

pub(super) async fn legacy_secrets(client: &Client, ns: &str) -> Finding {
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
