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

mod istiod;
mod reconcile;
#[cfg(test)]
mod tests;

pub use istiod::*;
pub use reconcile::*;

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
