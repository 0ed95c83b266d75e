//! Taking the mesh out of a cluster, in a safe order: first every peer's gateway pointing at it (so no
//! cluster keeps sending it traffic), then its own peer gateways, its east-west gateway, its control plane
//! (the ServiceMeshController, waiting until the operator has removed istiod, and the extensions ConfigMap),
//! the operator release and its license Secret, and — only when asked — `cacerts` and the Gateway API CRDs.
//! Only what Meshdeck applied is deleted (objects whose managed fields name its field manager); anything
//! else found is left in place and named in the step's summary. Every step is safe to run again.

use std::time::{Duration, Instant};

use kube::ResourceExt;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use serde::{Deserialize, Serialize};

use crate::ids::ClusterName;
use crate::objects::{
    EASTWEST_NAME, EASTWEST_NAMESPACE, OPERATOR_NAMESPACE, SMC_NAME, gateway_resource, smc_resource,
};
use crate::operator;
use crate::setup::{Outcome, Progress, StepError, StepResult, Target, WAIT};

/// A removal's steps on the cluster leaving the mesh, in the order they run (after its peers' gateways for
/// it are gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removal {
    PeerGateways,
    EastWest,
    ControlPlane,
    Operator,
    RootOfTrust,
    GatewayApi,
}

/// What is removed besides what every removal takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveOptions {
    /// Delete `cacerts` (the cluster's intermediate CA and the root bundle) from its control plane's namespace.
    pub cacerts: bool,
    /// Delete the Gateway API CRDs Meshdeck installed — never while any object of them remains.
    pub gateway_api: bool,
}

impl Removal {
    pub const ALL: [Removal; 6] = [
        Removal::PeerGateways,
        Removal::EastWest,
        Removal::ControlPlane,
        Removal::Operator,
        Removal::RootOfTrust,
        Removal::GatewayApi,
    ];

    /// The steps a removal with `options` runs, in order.
    pub fn steps(options: RemoveOptions) -> Vec<Removal> {
        Removal::ALL
            .into_iter()
            .filter(|s| match s {
                Removal::RootOfTrust => options.cacerts,
                Removal::GatewayApi => options.gateway_api,
                _ => true,
            })
            .collect()
    }

    pub fn key(self) -> &'static str {
        match self {
            Removal::PeerGateways => "remove:peer-gateways",
            Removal::EastWest => "remove:eastwest",
            Removal::ControlPlane => "remove:control-plane",
            Removal::Operator => "remove:operator",
            Removal::RootOfTrust => "remove:cacerts",
            Removal::GatewayApi => "remove:gateway-api",
        }
    }

    pub fn from_key(key: &str) -> Option<Removal> {
        Removal::ALL.into_iter().find(|s| s.key() == key)
    }

    pub fn title(self) -> &'static str {
        match self {
            Removal::PeerGateways => "Remove its peer gateways",
            Removal::EastWest => "Remove the east-west gateway",
            Removal::ControlPlane => "Remove the control plane",
            Removal::Operator => "Uninstall the operator",
            Removal::RootOfTrust => "Remove cacerts",
            Removal::GatewayApi => "Remove the Gateway API CRDs",
        }
    }

    /// The commands that do the same by hand; the cluster's control plane runs in `istio_ns`.
    pub fn commands(self, cluster: &ClusterName, istio_ns: &str) -> Vec<String> {
        let c = cluster.as_str();
        match self {
            Removal::PeerGateways => vec![format!(
                "kubectl --context {c} -n {EASTWEST_NAMESPACE} get gateways.gateway.networking.k8s.io -o name   # delete each istio-remote-peer-* Meshdeck made"
            )],
            Removal::EastWest => vec![format!(
                "kubectl --context {c} -n {EASTWEST_NAMESPACE} delete gateways.gateway.networking.k8s.io {EASTWEST_NAME}"
            )],
            Removal::ControlPlane => vec![
                format!(
                    "kubectl --context {c} -n {OPERATOR_NAMESPACE} delete servicemeshcontroller {SMC_NAME} --wait"
                ),
                format!(
                    "kubectl --context {c} -n {OPERATOR_NAMESPACE} delete configmap gloo-extensions-config"
                ),
            ],
            Removal::Operator => vec![
                format!(
                    "helm --kube-context {c} -n {OPERATOR_NAMESPACE} uninstall {} --wait",
                    operator::RELEASE
                ),
                format!(
                    "kubectl --context {c} -n {OPERATOR_NAMESPACE} delete secret {}",
                    operator::LICENSE_SECRET
                ),
            ],
            Removal::RootOfTrust => vec![format!(
                "kubectl --context {c} -n {istio_ns} delete secret cacerts"
            )],
            Removal::GatewayApi => vec![format!(
                "kubectl --context {c} delete -f https://github.com/kubernetes-sigs/gateway-api/releases/download/{}/standard-install.yaml",
                crate::gateway_api::BUNDLE_VERSION
            )],
        }
    }
}

/// What a removal step finds of one object in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Found {
    /// Applied by Meshdeck: the step deletes it.
    Ours,
    /// Someone else's (or changed by hand since): left in place and named.
    Foreign,
}

/// Whether Meshdeck's field manager holds fields of `obj`.
pub fn ours(obj: &DynamicObject) -> bool {
    obj.managed_fields()
        .iter()
        .any(|m| m.manager.as_deref() == Some(crate::FIELD_MANAGER))
}

/// The objects a removal step would delete (ours) or leave (foreign) in `t`, without changing anything:
/// `(kind, namespace/name, found)`. The cluster's control plane runs (or ran) in `istio_ns`: the removal
/// knows it from the mesh, since its ServiceMeshController is gone before `cacerts` is removed.
pub async fn survey(
    t: &Target,
    step: Removal,
    istio_ns: &str,
) -> Result<Vec<(String, String, Found)>, StepError> {
    let title = step.title();
    let mut out = vec![];
    let mut note = |kind: &str, ns: &str, obj: &DynamicObject| {
        out.push((
            kind.to_string(),
            format!("{ns}/{}", obj.name_any()),
            if ours(obj) {
                Found::Ours
            } else {
                Found::Foreign
            },
        ));
    };
    let read = |ns: &str, ar: &ApiResource| {
        Api::<DynamicObject>::namespaced_with(t.client.clone(), ns, ar)
    };
    match step {
        Removal::PeerGateways => {
            let list = read(EASTWEST_NAMESPACE, &gateway_resource())
                .list(&ListParams::default())
                .await
                .map_err(|e| StepError::kube(&t.name, title, "listing gateways", &e))?;
            for g in list
                .items
                .iter()
                .filter(|g| g.data["spec"]["gatewayClassName"] == "istio-remote")
            {
                note("Gateway", EASTWEST_NAMESPACE, g);
            }
        }
        Removal::EastWest => {
            if let Some(g) = get(
                t,
                &gateway_resource(),
                EASTWEST_NAMESPACE,
                EASTWEST_NAME,
                title,
            )
            .await?
            {
                note("Gateway", EASTWEST_NAMESPACE, &g);
            }
        }
        Removal::ControlPlane => {
            match read(OPERATOR_NAMESPACE, &smc_resource())
                .get_opt(SMC_NAME)
                .await
            {
                Ok(Some(smc)) => note("ServiceMeshController", OPERATOR_NAMESPACE, &smc),
                Ok(None) => {}
                // No operator CRD: nothing was installed.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => {
                    return Err(StepError::kube(
                        &t.name,
                        title,
                        "reading the ServiceMeshController",
                        &e,
                    ));
                }
            }
            if let Some(cm) = get(
                t,
                &core("ConfigMap"),
                OPERATOR_NAMESPACE,
                "gloo-extensions-config",
                title,
            )
            .await?
            {
                note("ConfigMap", OPERATOR_NAMESPACE, &cm);
            }
        }
        Removal::Operator => {
            if let Some(s) = get(
                t,
                &core("Secret"),
                OPERATOR_NAMESPACE,
                operator::LICENSE_SECRET,
                title,
            )
            .await?
            {
                note("Secret", OPERATOR_NAMESPACE, &s);
            }
        }
        Removal::RootOfTrust => {
            if let Some(s) = get(t, &core("Secret"), istio_ns, "cacerts", title).await? {
                note("Secret", istio_ns, &s);
            }
        }
        Removal::GatewayApi => {
            let crds = ApiResource::from_gvk(&GroupVersionKind::gvk(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
            ));
            let api = Api::<DynamicObject>::all_with(t.client.clone(), &crds);
            for crd in crate::gateway_api::bundle().unwrap_or_default() {
                let name = crd.name_any();
                if let Some(obj) = api.get_opt(&name).await.map_err(|e| {
                    StepError::kube(&t.name, title, &format!("reading CRD {name}"), &e)
                })? {
                    out.push((
                        "CustomResourceDefinition".into(),
                        name,
                        if ours(&obj) {
                            Found::Ours
                        } else {
                            Found::Foreign
                        },
                    ));
                }
            }
        }
    }
    Ok(out)
}

fn core(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", kind))
}

async fn get(
    t: &Target,
    ar: &ApiResource,
    ns: &str,
    name: &str,
    step: &str,
) -> Result<Option<DynamicObject>, StepError> {
    Api::<DynamicObject>::namespaced_with(t.client.clone(), ns, ar)
        .get_opt(name)
        .await
        .map_err(|e| StepError::kube(&t.name, step, &format!("reading {ns}/{name}"), &e))
}

/// Deletes `ns/name` when Meshdeck applied it; returns what it found.
async fn delete_ours(
    t: &Target,
    ar: &ApiResource,
    ns: &str,
    name: &str,
    step: &str,
) -> Result<Option<Found>, StepError> {
    let Some(obj) = get(t, ar, ns, name, step).await? else {
        return Ok(None);
    };
    if !ours(&obj) {
        return Ok(Some(Found::Foreign));
    }
    match Api::<DynamicObject>::namespaced_with(t.client.clone(), ns, ar)
        .delete(name, &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(Some(Found::Ours)),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
        Err(e) => Err(StepError::kube(
            &t.name,
            step,
            &format!("deleting {ns}/{name}"),
            &e,
        )),
    }
}

/// Tallies a step: what it deleted and what it left (someone else's).
#[derive(Default)]
struct Tally {
    removed: Vec<String>,
    left: Vec<String>,
}

impl Tally {
    fn add(&mut self, what: String, found: Option<Found>) {
        match found {
            Some(Found::Ours) => self.removed.push(what),
            Some(Found::Foreign) => self.left.push(what),
            None => {}
        }
    }

    fn outcome(self, progress: Progress<'_>) -> Outcome {
        let mut parts = vec![];
        if !self.removed.is_empty() {
            parts.push(format!("removed {}", self.removed.join(", ")));
        }
        if !self.left.is_empty() {
            let line = format!(
                "left in place (not made by Meshdeck): {}",
                self.left.join(", ")
            );
            progress(line.clone());
            parts.push(line);
        }
        Outcome {
            changed: !self.removed.is_empty(),
            summary: if parts.is_empty() {
                "nothing to remove".into()
            } else {
                parts.join("; ")
            },
        }
    }
}

/// On a peer: removes the peer gateway it holds for `leaving`, when Meshdeck made it (someone else's is left
/// and named).
pub async fn unpeer(peer: &Target, leaving: &ClusterName, progress: Progress<'_>) -> StepResult {
    let name = format!("istio-remote-peer-{leaving}");
    let mut tally = Tally::default();
    let found = delete_ours(
        peer,
        &gateway_resource(),
        EASTWEST_NAMESPACE,
        &name,
        "Unlink",
    )
    .await?;
    tally.add(format!("Gateway {EASTWEST_NAMESPACE}/{name}"), found);
    Ok(tally.outcome(progress))
}

/// Runs one removal step on the cluster leaving the mesh, whose control plane runs (or ran) in `istio_ns`.
pub async fn run(
    step: Removal,
    t: &Target,
    istio_ns: &str,
    helm: &std::path::Path,
    progress: Progress<'_>,
) -> StepResult {
    let title = step.title();
    let mut tally = Tally::default();
    match step {
        Removal::PeerGateways => {
            for (kind, what, found) in survey(t, step, istio_ns).await? {
                let name = what.rsplit('/').next().unwrap_or_default().to_string();
                let found = match found {
                    Found::Ours => {
                        delete_ours(t, &gateway_resource(), EASTWEST_NAMESPACE, &name, title)
                            .await?
                    }
                    Found::Foreign => Some(Found::Foreign),
                };
                tally.add(format!("{kind} {what}"), found);
            }
        }
        Removal::EastWest => {
            let found = delete_ours(
                t,
                &gateway_resource(),
                EASTWEST_NAMESPACE,
                EASTWEST_NAME,
                title,
            )
            .await?;
            tally.add(
                format!("Gateway {EASTWEST_NAMESPACE}/{EASTWEST_NAME}"),
                found,
            );
        }
        Removal::ControlPlane => {
            // A cluster without the operator's CRD answers "not found" too: nothing to remove.
            let smc = delete_ours(t, &smc_resource(), OPERATOR_NAMESPACE, SMC_NAME, title).await?;
            if smc == Some(Found::Ours) {
                progress("deleting the ServiceMeshController; waiting for the operator to remove the control plane".into());
                wait_gone(t, &smc_resource(), OPERATOR_NAMESPACE, SMC_NAME, title).await?;
            }
            tally.add(
                format!("ServiceMeshController {OPERATOR_NAMESPACE}/{SMC_NAME}"),
                smc,
            );
            let cm = delete_ours(
                t,
                &core("ConfigMap"),
                OPERATOR_NAMESPACE,
                "gloo-extensions-config",
                title,
            )
            .await?;
            tally.add(
                format!("ConfigMap {OPERATOR_NAMESPACE}/gloo-extensions-config"),
                cm,
            );
        }
        Removal::Operator => {
            // The operator stays while it still runs a control plane Meshdeck did not make.
            let smcs = Api::<DynamicObject>::all_with(t.client.clone(), &smc_resource())
                .list(&ListParams::default())
                .await;
            let others: Vec<String> = match smcs {
                Ok(l) => l
                    .items
                    .iter()
                    .map(|s| format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any()))
                    .collect(),
                Err(kube::Error::Api(s)) if s.code == 404 => vec![],
                Err(e) => {
                    return Err(StepError::kube(
                        &t.name,
                        title,
                        "listing ServiceMeshControllers",
                        &e,
                    ));
                }
            };
            if others.is_empty() {
                let uninstalled = operator::uninstall(helm, &t.creds, &t.client)
                    .await
                    .map_err(|e| {
                        StepError::new(
                            &t.name,
                            title,
                            e.to_string(),
                            "Fix the cause above, then retry this cluster",
                        )
                    })?;
                if uninstalled {
                    progress(format!(
                        "uninstalled the Helm release {}",
                        operator::RELEASE
                    ));
                    tally.removed.push(format!(
                        "Helm release {OPERATOR_NAMESPACE}/{}",
                        operator::RELEASE
                    ));
                }
            } else {
                tally.left.push(format!(
                    "Helm release {OPERATOR_NAMESPACE}/{} (it still runs ServiceMeshController {})",
                    operator::RELEASE,
                    others.join(", ")
                ));
            }
            let s = delete_ours(
                t,
                &core("Secret"),
                OPERATOR_NAMESPACE,
                operator::LICENSE_SECRET,
                title,
            )
            .await?;
            tally.add(
                format!("Secret {OPERATOR_NAMESPACE}/{}", operator::LICENSE_SECRET),
                s,
            );
        }
        Removal::RootOfTrust => {
            let s = delete_ours(t, &core("Secret"), istio_ns, "cacerts", title).await?;
            tally.add(format!("Secret {istio_ns}/cacerts"), s);
        }
        Removal::GatewayApi => {
            let in_use = gateway_api_in_use(t, title).await?;
            let crds = ApiResource::from_gvk(&GroupVersionKind::gvk(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
            ));
            let api = Api::<DynamicObject>::all_with(t.client.clone(), &crds);
            for (_, name, found) in survey(t, step, istio_ns).await? {
                match (found, in_use.is_empty()) {
                    (Found::Ours, true) => {
                        match api.delete(&name, &DeleteParams::default()).await {
                            Ok(_) => tally.removed.push(format!("CRD {name}")),
                            Err(kube::Error::Api(s)) if s.code == 404 => {}
                            Err(e) => {
                                return Err(StepError::kube(
                                    &t.name,
                                    title,
                                    &format!("deleting CRD {name}"),
                                    &e,
                                ));
                            }
                        }
                    }
                    (Found::Ours, false) => tally
                        .left
                        .push(format!("CRD {name} (in use: {})", in_use.join(", "))),
                    (Found::Foreign, _) => tally.left.push(format!("CRD {name}")),
                }
            }
        }
    }
    Ok(tally.outcome(progress))
}

/// Objects of the Gateway API kinds still in the cluster (at most a few named): while any remains, the CRDs
/// stay.
async fn gateway_api_in_use(t: &Target, step: &str) -> Result<Vec<String>, StepError> {
    let mut found = vec![];
    for crd in crate::gateway_api::bundle().unwrap_or_default() {
        let Some(version) = crd.spec.versions.iter().find(|v| v.served) else {
            continue;
        };
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(&crd.spec.group, &version.name, &crd.spec.names.kind),
            &crd.spec.names.plural,
        );
        match Api::<DynamicObject>::all_with(t.client.clone(), &ar)
            .list(&ListParams::default().limit(3))
            .await
        {
            Ok(l) => found.extend(l.items.iter().map(|o| {
                format!(
                    "{} {}/{}",
                    crd.spec.names.kind,
                    o.namespace().unwrap_or_default(),
                    o.name_any()
                )
            })),
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(StepError::kube(
                    &t.name,
                    step,
                    &format!("listing {}", crd.spec.names.plural),
                    &e,
                ));
            }
        }
        if found.len() >= 5 {
            break;
        }
    }
    Ok(found)
}

async fn wait_gone(
    t: &Target,
    ar: &ApiResource,
    ns: &str,
    name: &str,
    step: &str,
) -> Result<(), StepError> {
    let start = Instant::now();
    while get(t, ar, ns, name, step).await?.is_some() {
        if start.elapsed() > WAIT {
            return Err(StepError::new(
                &t.name,
                step,
                format!("{ns}/{name} is still being deleted"),
                "Look at the operator's log, then retry this cluster",
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}
