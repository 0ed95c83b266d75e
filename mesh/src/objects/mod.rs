//! Builders of the objects Meshdeck writes, shaped exactly as mesh-spec.md gives them: the
//! ServiceMeshController (§4.1), the `gloo-extensions-config` ConfigMap (§4.3), the east-west Gateway (§1.1,
//! §1.2) and the `istio-remote` peer Gateway (§2.1). Builders are pure; what they need from live clusters is
//! read by [`PeerInfo::read`].

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::ids::{ClusterName, NetworkName};

pub const EASTWEST_NAMESPACE: &str = "istio-eastwest";
pub const EASTWEST_NAME: &str = "istio-eastwest";
/// The ServiceMeshController's default `installNamespace` (§4.1): where istiod, ztunnel, `cacerts` and the
/// mesh ConfigMaps live unless the mesh says otherwise.
pub const ISTIO_NAMESPACE: &str = "istio-system";
pub const OPERATOR_NAMESPACE: &str = "gloo-mesh";
pub const SMC_NAME: &str = "managed-istio";
/// The namespaces the Gloo Operator watches without `WATCH_NAMESPACES` (§4.1 `installNamespace`): an
/// install namespace outside these needs the operator's `manager.env.WATCH_NAMESPACES`.
pub const OPERATOR_WATCHED: [&str; 3] = ["gloo-system", "gloo-mesh", "istio-system"];

/// The namespace a cluster's control plane is installed in: its ServiceMeshController's `installNamespace`
/// (§4.1), or istio-system when the controller names none, does not exist (yet, or no more) or may not be
/// read with these credentials (a view-only account reads what it can there).
pub async fn istio_namespace(client: &Client) -> Result<String, kube::Error> {
    Ok(controller_namespace(client)
        .await?
        .unwrap_or_else(|| ISTIO_NAMESPACE.to_string()))
}

/// The namespace the cluster's ServiceMeshController installs the control plane in (its `installNamespace`,
/// istio-system when it names none), or None when there is no controller (or it may not be read).
pub async fn controller_namespace(client: &Client) -> Result<Option<String>, kube::Error> {
    let api = Api::<kube::api::DynamicObject>::namespaced_with(
        client.clone(),
        OPERATOR_NAMESPACE,
        &smc_resource(),
    );
    let smc = match api.get_opt(SMC_NAME).await {
        Ok(smc) => smc,
        Err(kube::Error::Api(e)) if e.code == 403 || e.code == 404 => None,
        Err(e) => return Err(e),
    };
    Ok(smc.map(|o| {
        o.data["spec"]["installNamespace"]
            .as_str()
            .filter(|n| !n.is_empty())
            .unwrap_or(ISTIO_NAMESPACE)
            .to_string()
    }))
}

/// The Gateway API `Gateway` resource (read and listed as dynamic objects).
pub fn gateway_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "gateway.networking.k8s.io",
        "v1",
        "Gateway",
    ))
}

/// The operator's `ServiceMeshController` resource.
pub fn smc_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "operator.gloo.solo.io",
        "v1",
        "ServiceMeshController",
    ))
}

/// How peers reach a cluster's east-west gateway (§1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DataPlane {
    LoadBalancer,
    NodePort,
}

/// The east-west Gateway's (and so its Service's) variant annotation (§1.2).
pub const DATA_PLANE_SERVICE_TYPE: &str = "peering.solo.io/data-plane-service-type";

impl DataPlane {
    /// The variant an annotation value names: istiod compares with `nodeport` ignoring case, anything else
    /// is the default (load balancer) behaviour (§1.2).
    pub fn from_annotation(v: &str) -> DataPlane {
        if v.eq_ignore_ascii_case("nodeport") {
            DataPlane::NodePort
        } else {
            DataPlane::LoadBalancer
        }
    }
}

/// The fields of a ServiceMeshController (§4.1). `None` leaves the operator's default.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MeshSpec {
    pub cluster: Option<ClusterName>,
    pub network: Option<NetworkName>,
    /// Always `Ambient` for multicluster: peering needs istiod's ambient controllers (§2.4).
    pub dataplane_mode: Option<String>,
    pub distribution: Option<String>,
    pub image_repository: Option<String>,
    pub image_secrets: Vec<String>,
    pub install_namespace: Option<String>,
    pub on_conflict: Option<String>,
    pub repository_secrets: Vec<String>,
    pub repository_insecure_skip_verify: Option<bool>,
    pub scaling_profile: Option<String>,
    pub traffic_capture_mode: Option<String>,
    pub trust_domain: Option<String>,
    pub version: String,
}

/// The ServiceMeshController, as the guide writes it (§4.1, label `app.kubernetes.io/name`).
pub fn service_mesh_controller(spec: &MeshSpec) -> Value {
    let mut s = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            s.insert(k.to_string(), v);
        }
    };
    put("cluster", spec.cluster.as_ref().map(|c| json!(c.as_str())));
    put("network", spec.network.as_ref().map(|n| json!(n.as_str())));
    put(
        "dataplaneMode",
        spec.dataplane_mode.as_ref().map(|v| json!(v)),
    );
    put("distribution", spec.distribution.as_ref().map(|v| json!(v)));
    let mut image = serde_json::Map::new();
    if let Some(r) = &spec.image_repository {
        image.insert("repository".into(), json!(r));
    }
    if !spec.image_secrets.is_empty() {
        image.insert(
            "secrets".into(),
            json!(
                spec.image_secrets
                    .iter()
                    .map(|n| json!({"name": n}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    put("image", (!image.is_empty()).then_some(Value::Object(image)));
    put(
        "installNamespace",
        spec.install_namespace.as_ref().map(|v| json!(v)),
    );
    put("onConflict", spec.on_conflict.as_ref().map(|v| json!(v)));
    let mut repo = serde_json::Map::new();
    if !spec.repository_secrets.is_empty() {
        repo.insert(
            "secrets".into(),
            json!(
                spec.repository_secrets
                    .iter()
                    .map(|n| json!({"name": n}))
                    .collect::<Vec<_>>()
            ),
        );
    }
    if let Some(b) = spec.repository_insecure_skip_verify {
        repo.insert("insecureSkipVerify".into(), json!(b));
    }
    put(
        "repository",
        (!repo.is_empty()).then_some(Value::Object(repo)),
    );
    put(
        "scalingProfile",
        spec.scaling_profile.as_ref().map(|v| json!(v)),
    );
    put(
        "trafficCaptureMode",
        spec.traffic_capture_mode.as_ref().map(|v| json!(v)),
    );
    put("trustDomain", spec.trust_domain.as_ref().map(|v| json!(v)));
    put("version", Some(json!(spec.version)));
    json!({
        "apiVersion": "operator.gloo.solo.io/v1",
        "kind": "ServiceMeshController",
        "metadata": {"name": SMC_NAME, "namespace": OPERATOR_NAMESPACE, "labels": {"app.kubernetes.io/name": SMC_NAME}},
        "spec": Value::Object(s),
    })
}

/// The `beta` section's CNI directories (§4.3: `serviceMeshController.cni.{confDir,binDir}`), for platforms
/// whose nodes keep the CNI configuration or binaries elsewhere than the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CniDirs {
    pub conf_dir: Option<String>,
    pub bin_dir: Option<String>,
}

/// `gloo-extensions-config` (§4.3, §7.1): automatic peering sets `multiClusterMode: Peering` and
/// `PEERING_AUTOMATIC_LOCAL_GATEWAY`; CNI directories go in the same `beta` key; extra istiod env goes in
/// `values.istiod`; `extra` holds further data keys as given (e.g. `stable`, `values.istio-ztunnel`).
pub fn extensions_config(
    automatic_peering: bool,
    cni: &CniDirs,
    istiod_env: &BTreeMap<String, String>,
    extra: &BTreeMap<String, String>,
) -> Value {
    let mut data = serde_json::Map::new();
    for (k, v) in extra {
        data.insert(k.clone(), json!(v));
    }
    let quote = |v: &str| serde_json::to_string(v).unwrap_or_default();
    let mut beta = String::new();
    if cni.conf_dir.is_some() || cni.bin_dir.is_some() {
        beta.push_str("  cni:\n");
        if let Some(d) = &cni.conf_dir {
            beta.push_str(&format!("    confDir: {}\n", quote(d)));
        }
        if let Some(d) = &cni.bin_dir {
            beta.push_str(&format!("    binDir: {}\n", quote(d)));
        }
    }
    if automatic_peering {
        beta.push_str("  multiClusterMode: Peering\n");
    }
    if !beta.is_empty() {
        data.insert(
            "beta".into(),
            json!(format!("serviceMeshController:\n{beta}")),
        );
    }
    let mut env = istiod_env.clone();
    if automatic_peering {
        env.insert("PEERING_AUTOMATIC_LOCAL_GATEWAY".into(), "true".into());
    }
    if !env.is_empty() {
        let mut text = String::from("env:\n");
        for (k, v) in &env {
            text.push_str(&format!(
                "  {k}: {}\n",
                serde_json::to_string(v).unwrap_or_default()
            ));
        }
        data.insert("values.istiod".into(), json!(text));
    }
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "gloo-extensions-config", "namespace": OPERATOR_NAMESPACE},
        "data": Value::Object(data),
    })
}

/// The further keys of the extensions ConfigMap as the text [`parse_extensions_yaml`] reads back (each key
/// with its YAML as a block): what a form shows of a cluster's current settings.
pub fn extensions_yaml_text(keys: &BTreeMap<String, String>) -> String {
    if keys.is_empty() {
        return String::new();
    }
    serde_yaml::to_string(keys).unwrap_or_default()
}

/// The raw escape hatch of the extensions ConfigMap: a YAML mapping of data keys to YAML strings
/// (`stable: |` …). Each value must itself parse as YAML, so a typo is caught before it reaches the operator.
pub fn parse_extensions_yaml(text: &str) -> Result<BTreeMap<String, String>, String> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let limits = crate::yaml::Limits {
        input_bytes: 256 * 1024,
        documents: 1,
        ..crate::yaml::Limits::INPUT
    };
    let v: serde_yaml::Value = crate::yaml::from_str(text, &limits).map_err(|e| e.to_string())?;
    let serde_yaml::Value::Mapping(m) = v else {
        return Err("write a mapping of ConfigMap keys to YAML text, e.g. `stable: |` and the YAML below it".into());
    };
    let mut out = BTreeMap::new();
    for (k, v) in m {
        let Some(k) = k.as_str() else {
            return Err("every key must be a string".into());
        };
        let Some(v) = v.as_str() else {
            return Err(format!(
                "the value of {k} must be YAML text (`{k}: |` followed by the indented YAML), not a nested mapping"
            ));
        };
        crate::yaml::check(v, &limits).map_err(|e| match e {
            crate::yaml::Error::Syntax(m) => format!("the value of {k} is not YAML: {m}"),
            e => format!("the value of {k}: {e}"),
        })?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

fn listeners(cross_network: i64, xds: i64) -> Value {
    json!([
        {"name": "cross-network", "port": cross_network, "protocol": "HBONE", "tls": {"mode": "Passthrough"}},
        {"name": "xds-tls", "port": xds, "protocol": "TLS", "tls": {"mode": "Passthrough"}},
    ])
}

/// Locality labels copied onto gateways (§1.1, §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Locality {
    pub region: Option<String>,
    pub zone: Option<String>,
}

/// The east-west Gateway of §1.1 — always with `topology.istio.io/cluster` (§9 P11) — in the LoadBalancer or
/// NodePort variant (§1.2), with an optional address override (§1.3).
pub fn eastwest_gateway(
    cluster: &ClusterName,
    network: &NetworkName,
    data_plane: DataPlane,
    address_override: Option<&str>,
    locality: &Locality,
) -> Value {
    let mut labels = json!({
        "istio.io/expose-istiod": "15012",
        "topology.istio.io/network": network.as_str(),
        "topology.istio.io/cluster": cluster.as_str(),
    });
    if let Some(r) = &locality.region {
        labels["topology.kubernetes.io/region"] = json!(r);
    }
    if let Some(z) = &locality.zone {
        labels["topology.kubernetes.io/zone"] = json!(z);
    }
    let mut metadata =
        json!({"name": EASTWEST_NAME, "namespace": EASTWEST_NAMESPACE, "labels": labels});
    let mut annotations = serde_json::Map::new();
    if data_plane == DataPlane::NodePort {
        annotations.insert(DATA_PLANE_SERVICE_TYPE.into(), json!("NodePort"));
    }
    if let Some(a) = address_override {
        annotations.insert("istio.io/expose-istiod-address".into(), json!(a));
    }
    if !annotations.is_empty() {
        metadata["annotations"] = Value::Object(annotations);
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": metadata,
        "spec": {"gatewayClassName": "istio-eastwest", "listeners": listeners(15008, 15012)},
    })
}

/// What `istioctl multicluster link` reads from a peer (§2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerInfo {
    pub cluster: String,
    pub network: String,
    /// `IPAddress` or `Hostname`.
    pub address_type: &'static str,
    pub address: String,
    pub trust_domain: String,
    /// The name of the peer's expose-istiod Service.
    pub service_account: String,
    pub locality: Locality,
}

/// The `istio-remote` Gateway that lets the local cluster reach `peer` (§2.1), named after the peer's
/// cluster; with the NodePort preference when the data plane goes through node ports (§1.2, §2.1).
pub fn peer_gateway(peer: &PeerInfo, data_plane: DataPlane) -> Value {
    let mut labels = json!({
        "topology.istio.io/network": peer.network,
        "topology.istio.io/cluster": peer.cluster,
    });
    if let Some(r) = &peer.locality.region {
        labels["topology.kubernetes.io/region"] = json!(r);
    }
    if let Some(z) = &peer.locality.zone {
        labels["topology.kubernetes.io/zone"] = json!(z);
    }
    let mut annotations = json!({
        "gateway.istio.io/service-account": peer.service_account,
        "gateway.istio.io/trust-domain": peer.trust_domain,
    });
    if data_plane == DataPlane::NodePort {
        annotations["peering.solo.io/preferred-data-plane-service-type"] = json!("NodePort");
    }
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {
            "name": format!("istio-remote-peer-{}", peer.cluster),
            "namespace": EASTWEST_NAMESPACE,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": {
            "gatewayClassName": "istio-remote",
            "addresses": [{"type": peer.address_type, "value": peer.address}],
            "listeners": listeners(15008, 15012),
        },
    })
}

#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "no services with \"istio.io/expose-istiod\" label: create the east-west gateway first"
    )]
    NoEastWest,
    #[error(
        "services found with \"istio.io/expose-istiod\" label, but none have a load balancer address: wait for the \
         address, or set an address override (istio.io/expose-istiod-address), or use NodePort peering"
    )]
    NoAddress,
    #[error("reading the peer's {what}: {source}")]
    Kube {
        what: &'static str,
        #[source]
        source: kube::Error,
    },
}

fn mesh_trust_domain(mesh: &str) -> String {
    crate::yaml::from_str::<Value>(mesh, &crate::yaml::Limits::CLUSTER_VALUE)
        .ok()
        .and_then(|v| v["trustDomain"].as_str().map(String::from))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cluster.local".into())
}

impl PeerInfo {
    /// Reads a peer's live state as `istioctl multicluster link` does (§2.1): the first Service labelled
    /// `istio.io/expose-istiod` with an address (override annotation or LB ingress), its network/cluster labels
    /// (falling back to the istio-system namespace label, istiod's CLUSTER_ID, then the network), and the
    /// trust domain of the mesh config (`istio-gloo`, then `istio`; default `cluster.local`).
    pub async fn read(client: &Client) -> Result<PeerInfo, PeerError> {
        Ok(Self::read_with_data_plane(client).await?.0)
    }

    /// [`PeerInfo::read`], plus the variant the peer's east-west Service declares
    /// (`peering.solo.io/data-plane-service-type`, propagated from its Gateway, §1.2), if it declares one.
    pub async fn read_with_data_plane(
        client: &Client,
    ) -> Result<(PeerInfo, Option<DataPlane>), PeerError> {
        let kube_err = |what| move |source| PeerError::Kube { what, source };
        let services = Api::<Service>::all(client.clone())
            .list(&ListParams::default().labels("istio.io/expose-istiod"))
            .await
            .map_err(kube_err("east-west services"))?;
        if services.items.is_empty() {
            return Err(PeerError::NoEastWest);
        }
        let (svc, address_type, address) = services
            .items
            .iter()
            .find_map(|s| {
                if let Some(a) = s
                    .annotations()
                    .get("istio.io/expose-istiod-address")
                    .filter(|a| !a.is_empty())
                {
                    let ty = if a.parse::<std::net::IpAddr>().is_ok() {
                        "IPAddress"
                    } else {
                        "Hostname"
                    };
                    return Some((s, ty, a.clone()));
                }
                let ing = s
                    .status
                    .as_ref()?
                    .load_balancer
                    .as_ref()?
                    .ingress
                    .as_ref()?
                    .first()?;
                match (&ing.ip, &ing.hostname) {
                    (Some(ip), _) if !ip.is_empty() => Some((s, "IPAddress", ip.clone())),
                    (_, Some(h)) if !h.is_empty() => Some((s, "Hostname", h.clone())),
                    _ => None,
                }
            })
            .ok_or(PeerError::NoAddress)?;
        let labels = svc.labels();
        let istio_ns = istio_namespace(client)
            .await
            .map_err(kube_err("the ServiceMeshController's installNamespace"))?;
        let ns_network = Api::<Namespace>::all(client.clone())
            .get_opt(&istio_ns)
            .await
            .map_err(kube_err("the control plane's namespace"))?
            .and_then(|n| n.labels().get("topology.istio.io/network").cloned());
        let network = labels
            .get("topology.istio.io/network")
            .cloned()
            .or(ns_network)
            .unwrap_or_default();
        let cluster_id = Api::<Deployment>::namespaced(client.clone(), &istio_ns)
            .list(&ListParams::default().labels("app=istiod"))
            .await
            .map_err(kube_err("istiod deployments"))?
            .items
            .iter()
            .find_map(|d| {
                d.spec
                    .as_ref()?
                    .template
                    .spec
                    .as_ref()?
                    .containers
                    .iter()
                    .find(|c| c.name == "discovery")?
                    .env
                    .as_ref()?
                    .iter()
                    .find_map(|e| (e.name == "CLUSTER_ID").then(|| e.value.clone()).flatten())
            })
            .filter(|c| c != "Kubernetes");
        let cluster = labels
            .get("topology.istio.io/cluster")
            .cloned()
            .or(cluster_id)
            .unwrap_or_else(|| network.clone());
        let cms = Api::<ConfigMap>::namespaced(client.clone(), &istio_ns);
        let mut trust_domain = "cluster.local".to_string();
        for name in ["istio-gloo", "istio"] {
            if let Some(cm) = cms.get_opt(name).await.map_err(kube_err("mesh config"))? {
                trust_domain = cm
                    .data
                    .as_ref()
                    .and_then(|d| d.get("mesh"))
                    .map(|m| mesh_trust_domain(m))
                    .unwrap_or(trust_domain);
                break;
            }
        }
        let data_plane = svc
            .annotations()
            .get(DATA_PLANE_SERVICE_TYPE)
            .map(|v| DataPlane::from_annotation(v));
        let peer = PeerInfo {
            cluster,
            network,
            address_type,
            address,
            trust_domain,
            service_account: svc.name_any(),
            locality: Locality {
                region: labels.get("topology.kubernetes.io/region").cloned(),
                zone: labels.get("topology.kubernetes.io/zone").cloned(),
            },
        };
        Ok((peer, data_plane))
    }
}

#[cfg(test)]
mod tests;
