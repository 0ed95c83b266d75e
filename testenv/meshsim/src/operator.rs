//! The Gloo Operator (mesh-spec.md §4, §5) and the parts of istiod's start-up that decide its root of
//! trust (§6.1).
//!
//! Once the operator Deployment of the stand-in chart (`testenv/charts/gloo-operator`) has a ready replica, the
//! ServiceMeshController CRD is installed (§4.1 field table) and every ServiceMeshController in a watched
//! namespace is reconciled into the istiod-gloo Deployment, the ztunnel and istio-cni-node DaemonSets, the
//! `istio-gloo` mesh ConfigMap and the network label on the install namespace, with the status conditions of
//! §4.2 written as each comes true.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::apply::{self, OPERATOR, condition, to_value};
use crate::ca::{self, Plugged};
use crate::cluster::{Cluster, find, smc_resource};
use crate::faults::Faults;
use crate::world::World;

pub const SMC_CRD: &str = "servicemeshcontrollers.operator.gloo.solo.io";
/// Annotation on the published `istio-ca-root-cert` ConfigMap: the istiod pod whose start-up chose that root.
pub const ROOT_FOR_POD: &str = "meshsim.testenv.meshdeck.dev/istiod-pod";
/// Namespaces the operator watches without `WATCH_NAMESPACES` (§4.1 `installNamespace`).
const DEFAULT_WATCHED: [&str; 3] = ["gloo-system", "gloo-mesh", "istio-system"];

/// The ServiceMeshController CRD, schema from the §4.1 field table (defaults as documented).
pub fn smc_crd() -> Value {
    let secrets = json!({"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": SMC_CRD, "labels": {"app.kubernetes.io/name": "gloo-operator"}},
        "spec": {
            "group": "operator.gloo.solo.io",
            "scope": "Namespaced",
            "names": {"kind": "ServiceMeshController", "listKind": "ServiceMeshControllerList",
                      "plural": "servicemeshcontrollers", "singular": "servicemeshcontroller", "shortNames": ["smc"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    {"name": "Version", "type": "string", "jsonPath": ".spec.version"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "cluster": {"type": "string"},
                            "network": {"type": "string"},
                            "dataplaneMode": {"type": "string", "enum": ["Ambient", "Sidecar"], "default": "Ambient"},
                            "distribution": {"type": "string", "enum": ["Standard", "FIPS"], "default": "Standard"},
                            "image": {"type": "object", "properties": {
                                "repository": {"type": "string"}, "secrets": secrets}},
                            "installNamespace": {"type": "string", "default": "istio-system"},
                            "onConflict": {"type": "string", "enum": ["Force", "Abort"], "default": "Abort"},
                            "repository": {"type": "object", "properties": {
                                "secrets": secrets, "insecureSkipVerify": {"type": "boolean"}, "url": {"type": "string"}}},
                            "scalingProfile": {"type": "string", "enum": ["Default", "Demo", "Large"], "default": "Default"},
                            "trafficCaptureMode": {"type": "string", "enum": ["Auto", "InitContainer"], "default": "Auto"},
                            "trustDomain": {"type": "string"},
                            "version": {"type": "string"}
                        }},
                        "status": {"type": "object", "properties": {
                            "phase": {"type": "string"},
                            "observedGeneration": {"type": "integer", "format": "int64"},
                            "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                                "x-kubernetes-list-map-keys": ["type"],
                                "items": {"type": "object", "required": ["type", "status"], "properties": {
                                    "type": {"type": "string"}, "status": {"type": "string"},
                                    "reason": {"type": "string"}, "message": {"type": "string"},
                                    "lastTransitionTime": {"type": "string", "format": "date-time"},
                                    "observedGeneration": {"type": "integer", "format": "int64"}}}}
                        }}
                    }
                }}
            }]
        }
    })
}

/// Istio CRDs the operator installs with the control plane (the `CRDInstalled` condition, §4.2); peering uses
/// ServiceEntry and WorkloadEntry (§1.2).
fn istio_crds() -> Vec<Value> {
    [("networking.istio.io", "ServiceEntry", "serviceentries"), ("networking.istio.io", "WorkloadEntry", "workloadentries"),
     ("security.istio.io", "PeerAuthentication", "peerauthentications")]
        .iter()
        .map(|(group, kind, plural)| {
            json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("{plural}.{group}"), "labels": {"app.kubernetes.io/part-of": "istio"}},
                "spec": {
                    "group": group, "scope": "Namespaced",
                    "names": {"kind": kind, "plural": plural, "singular": kind.to_ascii_lowercase(), "listKind": format!("{kind}List")},
                    "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]
                }
            })
        })
        .collect()
}

fn crd_ar() -> ApiResource {
    ApiResource::erase::<CustomResourceDefinition>(&())
}

/// The operator's Deployment (label `app.kubernetes.io/name=gloo-operator`, §5), if any.
fn operator_deployment(cluster: &Cluster) -> Option<std::sync::Arc<Deployment>> {
    cluster.deployments.state().into_iter().find(|d| {
        d.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/name"))
            .map(String::as_str)
            == Some("gloo-operator")
    })
}

pub fn container_env(d: &Deployment, container: &str) -> BTreeMap<String, String> {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.env.as_ref())
        .map(|env| {
            env.iter()
                .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                .collect()
        })
        .unwrap_or_default()
}

fn ready_replicas(d: &Deployment) -> i32 {
    d.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

/// The resolved settings of one ServiceMeshController (§4.1 defaults applied).
#[derive(Debug, Clone)]
pub struct MeshSettings {
    pub cluster: String,
    pub network: String,
    pub trust_domain: String,
    pub install_ns: String,
    pub version: String,
    pub ambient: bool,
    pub force: bool,
    pub replicas: i32,
    pub image_repo: String,
}

impl MeshSettings {
    pub fn from_spec(spec: &Value) -> Result<MeshSettings, String> {
        let s = |k: &str| spec[k].as_str().unwrap_or_default().to_string();
        let cluster = s("cluster");
        let mode = spec["dataplaneMode"].as_str().unwrap_or("Ambient");
        let capture = spec["trafficCaptureMode"].as_str().unwrap_or("Auto");
        if capture == "InitContainer" && mode != "Sidecar" {
            return Err(
                "trafficCaptureMode InitContainer is only supported with dataplaneMode Sidecar"
                    .into(),
            );
        }
        let version = s("version");
        let version = if version.is_empty() {
            "1.28.1".to_string()
        } else {
            version
        };
        if !valid_version(&version) {
            return Err(format!(
                "version {version:?} is not an Istio patch version such as 1.28.1 or 1.28.1-patch0 (without -solo)"
            ));
        }
        // §4.1: trustDomain defaults to the cluster name if set, else cluster.local.
        let trust_domain = match (s("trustDomain"), cluster.as_str()) {
            (td, _) if !td.is_empty() => td,
            (_, c) if !c.is_empty() => c.to_string(),
            _ => "cluster.local".to_string(),
        };
        let install_ns = spec["installNamespace"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("istio-system")
            .to_string();
        let replicas = if spec["scalingProfile"].as_str() == Some("Large") {
            2
        } else {
            1
        };
        let image_repo = spec["image"]["repository"]
            .as_str()
            .unwrap_or("us-docker.pkg.dev/soloio-img/istio")
            .to_string();
        Ok(MeshSettings {
            network: s("network"),
            cluster,
            trust_domain,
            install_ns,
            version,
            ambient: mode == "Ambient",
            force: spec["onConflict"].as_str() == Some("Force"),
            replicas,
            image_repo,
        })
    }
}

fn valid_version(v: &str) -> bool {
    let (core, patch) = match v.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (v, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && patch.is_none_or(|p| {
            p.strip_prefix("patch")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
}

/// `gloo-extensions-config` (§4.3) of the SMC's namespace: istiod env from `values.istiod` and pod
/// annotations / discovery selectors from `stable`.
#[derive(Debug, Default)]
struct Extensions {
    istiod_env: BTreeMap<String, String>,
    pod_annotations: BTreeMap<String, String>,
    discovery_selectors: Option<Value>,
    peering_mode: bool,
}

fn extensions(cluster: &Cluster, ns: &str) -> Result<Extensions, String> {
    let Some(cm) = cluster.configmap(ns, "gloo-extensions-config") else {
        return Ok(Extensions::default());
    };
    let data = cm.data.clone().unwrap_or_default();
    let parse = |key: &str| -> Result<Value, String> {
        match data.get(key) {
            None => Ok(Value::Null),
            Some(text) => serde_yaml::from_str::<Value>(text)
                .map_err(|e| format!("gloo-extensions-config key {key:?} is not valid YAML: {e}")),
        }
    };
    let values = parse("values.istiod")?;
    let stable = parse("stable")?;
    let beta = parse("beta")?;
    let mut ext = Extensions::default();
    if let Some(env) = values["env"].as_object() {
        for (k, v) in env {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            ext.istiod_env.insert(k.clone(), v);
        }
    }
    let istiod = &stable["serviceMeshController"]["istiod"];
    if let Some(a) = istiod["deployment"]["podAnnotations"].as_object() {
        for (k, v) in a {
            ext.pod_annotations.insert(
                k.clone(),
                v.as_str()
                    .map(String::from)
                    .unwrap_or_else(|| v.to_string()),
            );
        }
    }
    if istiod["discoverySelectors"].is_array() {
        ext.discovery_selectors = Some(istiod["discoverySelectors"].clone());
    }
    ext.peering_mode =
        beta["serviceMeshController"]["multiClusterMode"].as_str() == Some("Peering");
    Ok(ext)
}

/// Is the license on this cluster's istiod valid for multicluster? (§2.4, §9 P7.) Decided from what is really
/// there: the `SOLO_LICENSE_KEY` env, or the Secret named by `SOLO_LICENSE_SECRET` with one of the keys
/// istiod reads; and the `license-invalid` fault knob.
pub fn license_valid(cluster: &Cluster, istiod: &Deployment) -> bool {
    if Faults::read(cluster).license_invalid {
        return false;
    }
    let env = container_env(istiod, "discovery");
    if env
        .get("SOLO_LICENSE_KEY")
        .is_some_and(|k| !k.trim().is_empty())
    {
        return true;
    }
    let Some((ns, name)) = env
        .get("SOLO_LICENSE_SECRET")
        .and_then(|r| r.split_once('/'))
    else {
        return false;
    };
    cluster.secret(ns, name).is_some_and(|s| {
        [
            "license-key",
            "gloo-mesh-license-key",
            "gloo-trial-license-key",
        ]
        .iter()
        .any(|k| {
            s.data
                .as_ref()
                .and_then(|d| d.get(*k))
                .is_some_and(|v| !v.0.is_empty())
        })
    })
}

/// The running istiod of a cluster: a Deployment labelled `app=istiod` with a ready replica.
pub fn running_istiod(cluster: &Cluster) -> Option<std::sync::Arc<Deployment>> {
    cluster.deployments.state().into_iter().find(|d| {
        d.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str)
            == Some("istiod")
            && ready_replicas(d) > 0
    })
}

/// The SHA-256 fingerprint of the root istiod of this cluster chose at start-up, from the published
/// `istio-ca-root-cert` ConfigMap of its namespace.
pub fn istiod_root_fingerprint(cluster: &Cluster, istiod: &Deployment) -> Option<String> {
    let ns = istiod.namespace()?;
    let cm = cluster.configmap(&ns, "istio-ca-root-cert")?;
    ca::fingerprint(cm.data.as_ref()?.get("root-cert.pem")?)
}

/// The trust domain of a cluster's mesh config (`istio-gloo` first, then `istio`, key `mesh`; default
/// `cluster.local`), as `istioctl multicluster link` reads it (§2.1).
pub fn mesh_trust_domain(cluster: &Cluster, ns: &str) -> String {
    for name in ["istio-gloo", "istio"] {
        if let Some(mesh) = cluster
            .configmap(ns, name)
            .and_then(|c| c.data.as_ref()?.get("mesh").cloned())
        {
            let v: Value = serde_yaml::from_str(&mesh).unwrap_or(Value::Null);
            return v["trustDomain"]
                .as_str()
                .filter(|s| !s.is_empty())
                .unwrap_or("cluster.local")
                .to_string();
        }
    }
    "cluster.local".into()
}

pub async fn reconcile(world: &World, cluster: &Cluster) -> apply::Result<()> {
    let Some(op) = operator_deployment(cluster) else {
        return Ok(());
    };
    // The chart is installed: the operator brings its CRD (issue: "installs the CRD when the chart is installed").
    let live_crd = find_crd(cluster, SMC_CRD);
    apply::apply(cluster, OPERATOR, &crd_ar(), smc_crd(), live_crd).await?;
    if ready_replicas(&op) < 1 {
        return Ok(());
    }
    let op_env = container_env(&op, "manager");
    let mut watched: HashSet<String> = DEFAULT_WATCHED.iter().map(|s| s.to_string()).collect();
    watched.insert(op.namespace().unwrap_or_default());
    for ns in op_env
        .get("WATCH_NAMESPACES")
        .into_iter()
        .flat_map(|v| v.split(','))
    {
        if !ns.trim().is_empty() {
            watched.insert(ns.trim().to_string());
        }
    }
    for smc in cluster.smcs.state() {
        let ns = smc.namespace().unwrap_or_default();
        if !watched.contains(&ns) {
            continue;
        }
        if smc.metadata.deletion_timestamp.is_some() {
            continue;
        }
        reconcile_smc(world, cluster, &smc, &op_env, &watched).await?;
    }
    Ok(())
}

fn find_crd(cluster: &Cluster, name: &str) -> Option<Value> {
    cluster
        .crds
        .state()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some(name))
        .and_then(|c| to_value(&*c))
}

struct Status {
    phase: &'static str,
    conditions: Vec<Value>,
}

async fn write_status(cluster: &Cluster, smc: &DynamicObject, st: Status) -> apply::Result<()> {
    let ns = smc.namespace().unwrap_or_default();
    let status = json!({
        "phase": st.phase,
        "observedGeneration": smc.metadata.generation,
        "conditions": st.conditions,
    });
    let live = smc.data.get("status");
    apply::apply_status(
        cluster,
        OPERATOR,
        &smc_resource(),
        Some(&ns),
        &smc.name_any(),
        status,
        live,
    )
    .await?;
    Ok(())
}

async fn reconcile_smc(
    world: &World,
    cluster: &Cluster,
    smc: &DynamicObject,
    op_env: &BTreeMap<String, String>,
    watched: &HashSet<String>,
) -> apply::Result<()> {
    let live_conds = smc.data["status"].get("conditions");
    let generation = smc.metadata.generation;
    let cond = |t: &str, s: &str, r: &str, m: &str| condition(live_conds, t, s, r, m, generation);
    let key = format!(
        "{}/{}/{}",
        cluster.name,
        smc.metadata.uid.clone().unwrap_or_default(),
        generation.unwrap_or(0)
    );
    let faults = Faults::read(cluster);
    let failed = |msg: &str, cond_type: &str, reason: &str| Status {
        phase: "FAILED",
        conditions: vec![
            cond(cond_type, "False", reason, msg),
            cond("Ready", "False", "SystemNotReady", msg),
        ],
    };

    // §4.2: reasons for failures are not public; these name what is wrong so a user can act.
    if let Some(reason) = &faults.operator_fail {
        tracing::warn!(cluster = %cluster.name, smc = %smc.name_any(), %reason, "operator fails (fault knob)");
        return write_status(
            cluster,
            smc,
            failed(reason, "Initialized", "ManifestsInitializationFailed"),
        )
        .await;
    }
    let settings = match MeshSettings::from_spec(&smc.data["spec"]) {
        Ok(s) => s,
        Err(msg) => {
            return write_status(cluster, smc, failed(&msg, "Initialized", "InvalidSpec")).await;
        }
    };
    if !watched.contains(&settings.install_ns) {
        let msg = format!(
            "installNamespace {} is not watched by the operator; set manager.env.WATCH_NAMESPACES={}",
            settings.install_ns, settings.install_ns
        );
        return write_status(
            cluster,
            smc,
            failed(&msg, "Initialized", "NamespaceNotWatched"),
        )
        .await;
    }
    let ext = match extensions(cluster, &smc.namespace().unwrap_or_default()) {
        Ok(e) => e,
        Err(msg) => {
            return write_status(
                cluster,
                smc,
                failed(&msg, "Initialized", "InvalidExtensionsConfig"),
            )
            .await;
        }
    };
    // §4.1 onConflict: another Istio control plane in the install namespace.
    let conflicts: Vec<String> = cluster
        .deployments
        .state()
        .iter()
        .filter(|d| d.namespace().as_deref() == Some(settings.install_ns.as_str()))
        .filter(|d| d.labels().get("app").map(String::as_str) == Some("istiod"))
        .filter(|d| {
            d.labels()
                .get("app.kubernetes.io/managed-by")
                .map(String::as_str)
                != Some("gloo-operator")
        })
        .map(|d| format!("Deployment {}/{}", settings.install_ns, d.name_any()))
        .collect();
    if !conflicts.is_empty() && !settings.force {
        let msg = format!(
            "existing Istio installation found ({}) that gloo-operator does not manage; remove it or set onConflict: Force",
            conflicts.join(", ")
        );
        return write_status(
            cluster,
            smc,
            failed(&msg, "ControlPlaneDeployed", "ConflictDetected"),
        )
        .await;
    }

    // Step 1: manifests initialised.
    if !world.held_for(&format!("{key}/init"), true) {
        return write_status(
            cluster,
            smc,
            Status {
                phase: "INSTALLING",
                conditions: vec![
                    cond(
                        "Initialized",
                        "False",
                        "ManifestsInitializing",
                        "Initializing manifests",
                    ),
                    cond(
                        "Ready",
                        "False",
                        "SystemNotReady",
                        "Waiting for Initialized",
                    ),
                ],
            },
        )
        .await;
    }
    let mut conditions = vec![cond(
        "Initialized",
        "True",
        "ManifestsInitialized",
        "Manifests initialized",
    )];

    // Step 2: CRDs.
    for crd in istio_crds() {
        let name = crd["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        apply::apply(cluster, OPERATOR, &crd_ar(), crd, find_crd(cluster, &name)).await?;
    }
    let crds_ok = istio_crds()
        .iter()
        .all(|c| cluster.crd_established(c["metadata"]["name"].as_str().unwrap_or_default()));
    if !crds_ok || !world.held_for(&format!("{key}/crds"), crds_ok) {
        conditions.push(cond(
            "CRDInstalled",
            "False",
            "CRDInstalling",
            "Installing CRDs",
        ));
        conditions.push(cond(
            "Ready",
            "False",
            "SystemNotReady",
            "Waiting for CRDInstalled",
        ));
        return write_status(
            cluster,
            smc,
            Status {
                phase: "INSTALLING",
                conditions,
            },
        )
        .await;
    }
    conditions.push(cond(
        "CRDInstalled",
        "True",
        "CRDInstalled",
        "CRDs installed",
    ));

    // Step 3: control plane, CNI and ztunnel.
    deploy_control_plane(cluster, smc, &settings, &ext, op_env).await?;
    let ns = &settings.install_ns;
    let istiod = cluster.deployment(ns, "istiod-gloo");
    let cp_ready = istiod
        .as_ref()
        .is_some_and(|d| ready_replicas(d) >= settings.replicas);
    let ds_ready = |name: &str| {
        find::<DaemonSet>(&cluster.daemonsets, ns, name).is_some_and(|d| {
            d.status.as_ref().is_some_and(|s| {
                s.desired_number_scheduled > 0 && s.number_ready >= s.desired_number_scheduled
            })
        })
    };
    let cni_ready = ds_ready("istio-cni-node");
    let ztunnel_ready = ds_ready("ztunnel");
    let cp_ok = world.held_for(&format!("{key}/cp"), cp_ready);
    let cni_ok = world.held_for(&format!("{key}/cni"), cni_ready);
    conditions.push(if cp_ok {
        cond(
            "ControlPlaneDeployed",
            "True",
            "DeploymentSucceeded",
            "Deployment succeeded",
        )
    } else {
        cond(
            "ControlPlaneDeployed",
            "False",
            "DeploymentInProgress",
            &format!("Waiting for Deployment {ns}/istiod-gloo to be ready"),
        )
    });
    conditions.push(if cni_ok {
        cond(
            "CNIDeployed",
            "True",
            "DeploymentSucceeded",
            "Deployment succeeded",
        )
    } else {
        cond(
            "CNIDeployed",
            "False",
            "DeploymentInProgress",
            &format!("Waiting for DaemonSet {ns}/istio-cni-node to be ready"),
        )
    });
    conditions.push(if cp_ok {
        cond(
            "WebhookDeployed",
            "True",
            "DeploymentSucceeded",
            "Deployment succeeded",
        )
    } else {
        cond(
            "WebhookDeployed",
            "False",
            "DeploymentInProgress",
            "Waiting for the control plane",
        )
    });
    let all = cp_ok && cni_ok && ztunnel_ready;
    let ready = world.held_for(&format!("{key}/ready"), all);
    let phase = if ready {
        conditions.push(cond(
            "Ready",
            "True",
            "SystemReady",
            "All conditions are met",
        ));
        "SUCCEEDED"
    } else {
        let mut waiting = Vec::new();
        if !cp_ok {
            waiting.push("ControlPlaneDeployed")
        }
        if !cni_ok {
            waiting.push("CNIDeployed")
        }
        if !ztunnel_ready {
            waiting.push("ztunnel")
        }
        let msg = if waiting.is_empty() {
            "Finishing".to_string()
        } else {
            format!("Waiting for {}", waiting.join(", "))
        };
        conditions.push(cond("Ready", "False", "SystemNotReady", &msg));
        "INSTALLING"
    };
    write_status(cluster, smc, Status { phase, conditions }).await
}

fn owner_label() -> Value {
    json!({"app.kubernetes.io/managed-by": "gloo-operator"})
}

async fn deploy_control_plane(
    cluster: &Cluster,
    smc: &DynamicObject,
    s: &MeshSettings,
    ext: &Extensions,
    op_env: &BTreeMap<String, String>,
) -> apply::Result<()> {
    let ns = s.install_ns.as_str();
    let ns_ar = ApiResource::erase::<Namespace>(&());
    let cm_ar = ApiResource::erase::<ConfigMap>(&());
    let dep_ar = ApiResource::erase::<Deployment>(&());
    let ds_ar = ApiResource::erase::<DaemonSet>(&());
    let svc_ar = ApiResource::erase::<Service>(&());

    // Install namespace, labelled with the network (§4.2 [INFERRED], needed by expose §1.1).
    let mut ns_labels = json!({});
    if !s.network.is_empty() {
        ns_labels["topology.istio.io/network"] = json!(s.network);
    }
    let live = cluster.namespace(ns).and_then(|n| to_value(&*n));
    apply::apply(
        cluster,
        OPERATOR,
        &ns_ar,
        json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": ns, "labels": ns_labels}}),
        live,
    )
    .await?;

    // Mesh config (§2.1: `istio-gloo`, key `mesh`, read for the trust domain).
    let mut mesh = json!({
        "trustDomain": s.trust_domain,
        "rootNamespace": ns,
        "defaultConfig": {"discoveryAddress": format!("istiod-gloo.{ns}.svc:15012"),
                          "proxyMetadata": {"ISTIO_META_DNS_CAPTURE": "true"}},
        "enablePrometheusMerge": true,
    });
    if let Some(sel) = &ext.discovery_selectors {
        mesh["discoverySelectors"] = sel.clone();
    }
    let mesh_yaml = serde_yaml::to_string(&mesh).unwrap_or_default();
    let live = cluster
        .configmap(ns, "istio-gloo")
        .and_then(|c| to_value(&*c));
    apply::apply(cluster, OPERATOR, &cm_ar, json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "istio-gloo", "namespace": ns, "labels": {"istio.io/rev": "gloo", "app.kubernetes.io/managed-by": "gloo-operator"}},
        "data": {"mesh": mesh_yaml, "meshNetworks": "networks: {}"}}), live).await?;

    // istiod env (§2.4, §3 check 1, §5 license mapping, §4.3 values.istiod).
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert(
        "CLUSTER_ID".into(),
        if s.cluster.is_empty() {
            "Kubernetes".into()
        } else {
            s.cluster.clone()
        },
    );
    env.insert("REVISION".into(), "gloo".into());
    env.insert("ENABLE_PEERING_DISCOVERY".into(), "true".into());
    env.insert("PILOT_ENABLE_AMBIENT".into(), s.ambient.to_string());
    env.insert("TRUST_DOMAIN".into(), s.trust_domain.clone());
    if ext.peering_mode {
        env.insert("DISABLE_LEGACY_MULTICLUSTER".into(), "true".into());
    }
    if let Some(k) = op_env
        .get("SOLO_ISTIO_LICENSE_KEY")
        .filter(|k| !k.is_empty())
    {
        env.insert("SOLO_LICENSE_KEY".into(), k.clone());
    }
    if let Some(r) = op_env
        .get("SOLO_ISTIO_LICENSE_KEY_SECRET_REF")
        .filter(|k| !k.is_empty())
    {
        env.insert("SOLO_LICENSE_SECRET".into(), r.clone());
    }
    for (k, v) in &ext.istiod_env {
        env.insert(k.clone(), v.clone());
    }
    let env: Vec<Value> = env
        .into_iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let mut pod_annotations = json!({"prometheus.io/port": "15014", "prometheus.io/scrape": "true",
                                     "sidecar.istio.io/inject": "false"});
    for (k, v) in &ext.pod_annotations {
        pod_annotations[k] = json!(v);
    }
    let tag = format!("{}-solo", s.version);
    let pod_labels = json!({"app": "istiod", "istio.io/rev": "gloo", "istio": "pilot"});
    let owner = json!([{"apiVersion": "operator.gloo.solo.io/v1", "kind": "ServiceMeshController",
        "name": smc.name_any(), "uid": smc.metadata.uid.clone().unwrap_or_default()}]);
    // Cross-namespace owner references are not allowed; the operator owns same-namespace objects only.
    let owned = smc.namespace().as_deref() == Some(ns);
    let meta = |name: &str, labels: Value| {
        let mut m = json!({"name": name, "namespace": ns, "labels": labels});
        for (k, v) in owner_label().as_object().into_iter().flatten() {
            m["labels"][k] = v.clone();
        }
        if owned {
            m["ownerReferences"] = owner.clone();
        }
        m
    };
    let live = cluster
        .deployment(ns, "istiod-gloo")
        .and_then(|d| to_value(&*d));
    apply::apply(cluster, OPERATOR, &dep_ar, json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": meta("istiod-gloo", pod_labels.clone()),
        "spec": {
            "replicas": s.replicas,
            "selector": {"matchLabels": {"app": "istiod", "istio.io/rev": "gloo"}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": {"containers": [{
                    "name": "discovery",
                    "image": format!("{}/pilot:{tag}", s.image_repo),
                    "args": ["discovery", "--monitoringAddr=:15014", "--log_output_level=default:info"],
                    "ports": [{"name": "http-debug", "containerPort": 8080, "protocol": "TCP"},
                              {"name": "grpc-xds", "containerPort": 15010, "protocol": "TCP"},
                              {"name": "tls-xds", "containerPort": 15012, "protocol": "TCP"},
                              {"name": "https-webhooks", "containerPort": 15017, "protocol": "TCP"},
                              {"name": "http-monitoring", "containerPort": 15014, "protocol": "TCP"}],
                    "env": env,
                }]}
            }
        }
    }), live).await?;
    let live = cluster
        .service(ns, "istiod-gloo")
        .and_then(|d| to_value(&*d));
    apply::apply(
        cluster,
        OPERATOR,
        &svc_ar,
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": meta("istiod-gloo", json!({"app": "istiod", "istio.io/rev": "gloo"})),
            "spec": {"selector": {"app": "istiod", "istio.io/rev": "gloo"}, "ports": [
                {"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                {"name": "https-webhook", "port": 443, "targetPort": 15017, "protocol": "TCP"},
                {"name": "http-monitoring", "port": 15014, "protocol": "TCP"}]}
        }),
        live,
    )
    .await?;

    for (name, app, image) in [
        ("ztunnel", "ztunnel", "ztunnel"),
        ("istio-cni-node", "istio-cni-node", "install-cni"),
    ] {
        let live = find::<DaemonSet>(&cluster.daemonsets, ns, name).and_then(|d| to_value(&*d));
        apply::apply(cluster, OPERATOR, &ds_ar, json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": meta(name, json!({"app": app, "k8s-app": app})),
            "spec": {
                "selector": {"matchLabels": {"k8s-app": app}},
                "template": {
                    "metadata": {"labels": {"app": app, "k8s-app": app, "sidecar.istio.io/inject": "false"}},
                    "spec": {"containers": [{"name": if name == "ztunnel" { "istio-proxy" } else { "install-cni" },
                        "image": format!("{}/{image}:{tag}", s.image_repo)}]}
                }
            }
        }), live).await?;
    }
    Ok(())
}

/// istiod's start-up (§6.1): for each istiod pod that kwok has started, decide the root of trust once —
/// `cacerts` if present and valid, otherwise a self-signed root kept in `istio-ca-secret` — and publish it as
/// `istio-ca-root-cert` in every namespace. A broken `cacerts` keeps istiod from becoming ready; so does the
/// `istiod-not-ready` knob.
pub async fn istiod_startup(world: &World, cluster: &Cluster) -> apply::Result<()> {
    let faults = Faults::read(cluster);
    let pod_ar = ApiResource::erase::<Pod>(&());
    let cm_ar = ApiResource::erase::<ConfigMap>(&());
    let secret_ar = ApiResource::erase::<Secret>(&());
    let pods: Vec<_> = cluster
        .pods
        .state()
        .into_iter()
        .filter(|p| p.labels().get("app").map(String::as_str) == Some("istiod"))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().is_some_and(|s| s.pod_ip.is_some()))
        .collect();
    for pod in pods {
        let ns = pod.namespace().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let published = cluster.configmap(&ns, "istio-ca-root-cert");
        let decided = published
            .as_ref()
            .is_some_and(|c| c.annotations().get(ROOT_FOR_POD) == Some(&uid));
        let mut broken = world.broken_ca(&uid);
        if !decided && broken.is_none() {
            let trust_domain = mesh_trust_domain(cluster, &ns);
            let root = match cluster.secret(&ns, "cacerts").map(|s| ca::read_cacerts(&s)) {
                Some(Plugged::Root(root)) => Some(root),
                Some(Plugged::Broken(msg)) => {
                    tracing::error!(cluster = %cluster.name, pod = %pod.name_any(), "istiod cannot start: {msg}");
                    world.set_broken_ca(&uid, &msg);
                    broken = Some(msg);
                    None
                }
                Some(Plugged::SelfSigned) | None => {
                    let existing = cluster.secret(&ns, "istio-ca-secret").and_then(|s| {
                        s.data
                            .as_ref()?
                            .get("ca-cert.pem")
                            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                    });
                    match existing {
                        Some(root) => Some(root),
                        None => {
                            let (cert, key) = match ca::self_signed_root(&trust_domain) {
                                Ok(pair) => pair,
                                Err(e) => {
                                    tracing::error!("generating a self-signed root: {e}");
                                    continue;
                                }
                            };
                            apply::apply(cluster, apply::ISTIOD, &secret_ar, json!({
                                "apiVersion": "v1", "kind": "Secret", "type": "istio.io/ca-root",
                                "metadata": {"name": "istio-ca-secret", "namespace": ns},
                                "data": {"ca-cert.pem": ca::b64(&cert), "ca-key.pem": ca::b64(&key),
                                         "cert-chain.pem": "", "root-cert.pem": ""}
                            }), None).await?;
                            tracing::info!(cluster = %cluster.name, "istiod generated a self-signed root (no cacerts at start-up)");
                            Some(cert)
                        }
                    }
                }
            };
            if let Some(root) = root {
                let mut namespaces: Vec<String> = cluster
                    .namespaces
                    .state()
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .filter(|n| !n.starts_with("kube-"))
                    .collect();
                // The istiod namespace goes last: its ConfigMap records the decision.
                namespaces.sort_by_key(|n| n == &ns);
                for target in namespaces {
                    let mut meta = json!({"name": "istio-ca-root-cert", "namespace": target, "labels": {"istio.io/config": "true"}});
                    if target == ns {
                        meta["annotations"] = json!({ROOT_FOR_POD: uid});
                    }
                    let live = cluster
                        .configmap(&target, "istio-ca-root-cert")
                        .and_then(|c| to_value(&*c));
                    apply::apply(
                        cluster,
                        apply::ISTIOD,
                        &cm_ar,
                        json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": meta, "data": {"root-cert.pem": root}}),
                        live,
                    )
                    .await?;
                }
            }
        } else if decided {
            // Namespaces created after start-up get the root too.
            if let Some(root) = published
                .as_ref()
                .and_then(|c| c.data.as_ref()?.get("root-cert.pem").cloned())
            {
                for n in cluster.namespaces.state() {
                    let Some(target) = n.metadata.name.clone() else {
                        continue;
                    };
                    if target.starts_with("kube-")
                        || target == ns
                        || n.metadata.deletion_timestamp.is_some()
                    {
                        continue;
                    }
                    if cluster.configmap(&target, "istio-ca-root-cert").is_none() {
                        apply::apply(cluster, apply::ISTIOD, &cm_ar, json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "istio-ca-root-cert", "namespace": target, "labels": {"istio.io/config": "true"}},
                            "data": {"root-cert.pem": root}}), None).await?;
                    }
                }
            }
        }
        // Readiness (§3 check 3): not ready while the CA is broken or the knob is on.
        let want_ready = broken.is_none() && !faults.istiod_not_ready;
        let is_ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if want_ready != is_ready {
            let status = if want_ready { "True" } else { "False" };
            let now = apply::now();
            let mut conditions: Vec<Value> = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .map(|cs| cs.iter().filter_map(to_value).collect())
                .unwrap_or_default();
            for c in conditions.iter_mut() {
                if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                    c["status"] = json!(status);
                    c["lastTransitionTime"] = json!(now);
                    if want_ready {
                        if let Some(o) = c.as_object_mut() {
                            o.remove("reason");
                            o.remove("message");
                        }
                    } else {
                        c["reason"] = json!("ContainersNotReady");
                        c["message"] = json!(broken.clone().unwrap_or_else(|| {
                            "containers with unready status: [discovery]".into()
                        }));
                    }
                }
            }
            let statuses: Vec<Value> = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|cs| {
                    cs.iter()
                        .filter_map(to_value)
                        .map(|mut c| {
                            c["ready"] = json!(want_ready);
                            c
                        })
                        .collect()
                })
                .unwrap_or_default();
            apply::merge_status(
                cluster,
                &pod_ar,
                &ns,
                &pod.name_any(),
                json!({
                "conditions": conditions, "containerStatuses": statuses}),
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_domain_defaults_to_cluster_then_cluster_local() {
        let s = MeshSettings::from_spec(&json!({"cluster": "cluster1", "network": "n1"}))
            .expect("valid");
        assert_eq!(s.trust_domain, "cluster1");
        let s = MeshSettings::from_spec(&json!({})).expect("valid");
        assert_eq!(s.trust_domain, "cluster.local");
        let s = MeshSettings::from_spec(&json!({"cluster": "c", "trustDomain": "corp.example"}))
            .expect("valid");
        assert_eq!(s.trust_domain, "corp.example");
    }

    #[test]
    fn versions_follow_the_documented_shape() {
        for ok in ["1.28.1", "1.28.1-patch0", "1.24.3"] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in ["1.28", "1.28.1-solo", "v1.28.1", "1.28.x", ""] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn init_container_capture_needs_sidecar_mode() {
        let err = MeshSettings::from_spec(
            &json!({"dataplaneMode": "Ambient", "trafficCaptureMode": "InitContainer"}),
        );
        assert!(err.is_err());
        assert!(
            MeshSettings::from_spec(
                &json!({"dataplaneMode": "Sidecar", "trafficCaptureMode": "InitContainer"})
            )
            .is_ok()
        );
    }
}
