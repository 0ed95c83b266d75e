//! Solo istiod's gateway controllers: the `istio-eastwest` class (mesh-spec.md §1.3–1.4), the `istio-remote`
//! class with the Solo peering conditions (§2.3, §2.4), and automatic local peer gateways (§7.2).
//!
//! Peering is decided by what is really in the peer cluster: the address must belong to the peer's east-west
//! gateway, the peer's istiod must run with peering enabled, the roots of trust chosen by both istiods at
//! start-up must match, the trust-domain annotation must match the peer's mesh config, and the license of both
//! must allow multicluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::ResourceExt;
use kube::api::{ApiResource, DynamicObject};
use serde_json::{Value, json};

use crate::apply::{self, ISTIOD, PEERING, condition, to_value};
use crate::cluster::{Cluster, find, find_dynamic, gateway_resource, gatewayclass_resource};
use crate::faults::Faults;
use crate::operator::{self, container_env};
use crate::world::World;

pub const EASTWEST_CLASS: &str = "istio-eastwest";
pub const REMOTE_CLASS: &str = "istio-remote";
const GATEWAY_CRD: &str = "gateways.gateway.networking.k8s.io";
const GATEWAYCLASS_CRD: &str = "gatewayclasses.gateway.networking.k8s.io";
const NODEPORT_DATA_PLANE: &str = "peering.solo.io/data-plane-service-type";
const NODEPORT_PREFERRED: &str = "peering.solo.io/preferred-data-plane-service-type";
const ADDRESS_OVERRIDE: &str = "istio.io/expose-istiod-address";
const SERVICE_TYPE: &str = "networking.istio.io/service-type";

fn labels(o: &DynamicObject) -> BTreeMap<String, String> {
    o.metadata.labels.clone().unwrap_or_default()
}

fn annotations(o: &DynamicObject) -> BTreeMap<String, String> {
    o.metadata.annotations.clone().unwrap_or_default()
}

fn listener_port(gw: &DynamicObject, name: &str) -> Option<i64> {
    gw.data["spec"]["listeners"]
        .as_array()?
        .iter()
        .find(|l| l["name"] == name)?["port"]
        .as_i64()
}

pub async fn reconcile(world: &World, cluster: &Cluster) -> apply::Result<()> {
    // The gateway controllers live in istiod and wait for the Gateway API CRDs (§2.4).
    let Some(istiod) = operator::running_istiod(cluster) else {
        return Ok(());
    };
    if !cluster.crd_established(GATEWAY_CRD) || !cluster.crd_established(GATEWAYCLASS_CRD) {
        return Ok(());
    }
    gateway_classes(cluster).await?;
    for gw in cluster.gateways_of_class(EASTWEST_CLASS) {
        if gw.metadata.deletion_timestamp.is_none() {
            eastwest(cluster, &gw).await?;
        }
    }
    let env = container_env(&istiod, "discovery");
    if env
        .get("PEERING_AUTOMATIC_LOCAL_GATEWAY")
        .map(String::as_str)
        == Some("true")
    {
        for gw in cluster.gateways_of_class(EASTWEST_CLASS) {
            automatic_local_peer(cluster, &istiod, &gw).await?;
        }
    }
    for gw in cluster.gateways_of_class(REMOTE_CLASS) {
        if gw.metadata.deletion_timestamp.is_none() {
            remote(world, cluster, &istiod, &gw).await?;
        }
    }
    Ok(())
}

async fn gateway_classes(cluster: &Cluster) -> apply::Result<()> {
    let ar = gatewayclass_resource();
    for (name, controller, description) in [
        (
            EASTWEST_CLASS,
            "istio.io/eastwest-controller",
            "The default Istio east-west gateway",
        ),
        (
            REMOTE_CLASS,
            "istio.io/unmanaged-gateway",
            "Remote to this cluster. Does not deploy or affect configuration.",
        ),
    ] {
        // GatewayClasses are few; apply is skipped by the server-side no-op when unchanged.
        let live = cluster
            .gatewayclasses
            .state()
            .into_iter()
            .find(|g| g.metadata.name.as_deref() == Some(name));
        apply::apply(
            cluster,
            ISTIOD,
            &ar,
            json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                "metadata": {"name": name},
                "spec": {"controllerName": controller, "description": description}
            }),
            live.as_ref().and_then(|g| to_value(&**g)),
        )
        .await?;
        if let Some(live) = live {
            let live_status = live.data.get("status");
            let status = json!({"conditions": [condition(live_status.and_then(|s| s.get("conditions")),
                "Accepted", "True", "Accepted", "Handled by Istio controller", live.metadata.generation)]});
            apply::apply_status(cluster, ISTIOD, &ar, None, name, status, live_status).await?;
        }
    }
    Ok(())
}

/// §1.3: what istiod generates for an `istio-eastwest` Gateway, and the status of §1.4.
async fn eastwest(cluster: &Cluster, gw: &DynamicObject) -> apply::Result<()> {
    let name = gw.name_any();
    let ns = gw.namespace().unwrap_or_default();
    let gw_labels = labels(gw);
    let gw_annotations = annotations(gw);
    let owner = json!([{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "name": name,
        "uid": gw.metadata.uid.clone().unwrap_or_default(), "controller": true}]);
    let network = gw_labels
        .get("topology.istio.io/network")
        .cloned()
        .unwrap_or_default();

    let sa_ar = ApiResource::erase::<ServiceAccount>(&());
    let dep_ar = ApiResource::erase::<Deployment>(&());
    let svc_ar = ApiResource::erase::<Service>(&());
    let live =
        find::<ServiceAccount>(&cluster.serviceaccounts, &ns, &name).and_then(|s| to_value(&*s));
    apply::apply(
        cluster,
        ISTIOD,
        &sa_ar,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": owner,
                     "labels": {"gateway.networking.k8s.io/gateway-name": name}}}),
        live,
    )
    .await?;
    let mut pod_labels = json!({
        "service.istio.io/canonical-name": name,
        "gateway.networking.k8s.io/gateway-name": name,
        "istio.io/dataplane-mode": "none",
    });
    if !network.is_empty() {
        pod_labels["topology.istio.io/network"] = json!(network);
    }
    let live = cluster.deployment(&ns, &name).and_then(|d| to_value(&*d));
    apply::apply(cluster, ISTIOD, &dep_ar, json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": owner,
                     "labels": {"gateway.networking.k8s.io/gateway-name": name}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"gateway.networking.k8s.io/gateway-name": name}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {"prometheus.io/port": "15020"}},
                "spec": {"serviceAccountName": name, "containers": [{
                    "name": "istio-proxy", "image": "us-docker.pkg.dev/soloio-img/istio/ztunnel:1.28.1-solo",
                    "ports": [{"containerPort": 15008, "name": "hbone", "protocol": "TCP"},
                              {"containerPort": 15012, "name": "xds", "protocol": "TCP"},
                              {"containerPort": 15021, "name": "status-port", "protocol": "TCP"}]}]}
            }
        }
    }), live).await?;

    let mut svc_labels = json!({});
    for (k, v) in &gw_labels {
        svc_labels[k] = json!(v);
    }
    svc_labels["gateway.networking.k8s.io/gateway-name"] = json!(name);
    svc_labels["networking.istio.io/hboneGatewayPort"] = json!("15008");
    if !network.is_empty() {
        svc_labels["topology.istio.io/network"] = json!(network);
    }
    let mut svc_annotations = json!({});
    for (k, v) in &gw_annotations {
        if ![
            "kubectl.kubernetes.io/last-applied-configuration",
            "gateway.istio.io/name-override",
            "gateway.istio.io/service-account",
            "gateway.istio.io/controller-version",
        ]
        .contains(&k.as_str())
        {
            svc_annotations[k] = json!(v);
        }
    }
    let svc_type = gw_annotations
        .get(SERVICE_TYPE)
        .cloned()
        .unwrap_or_else(|| "LoadBalancer".into());
    let mut svc_spec = json!({
        "type": svc_type,
        "selector": {"gateway.networking.k8s.io/gateway-name": name},
        "ports": [
            {"name": "status-port", "port": 15021, "protocol": "TCP", "appProtocol": "tcp"},
            {"name": "tls-hbone", "port": 15008, "protocol": "TCP", "appProtocol": "all"},
            {"name": "tls-xds", "port": 15012, "protocol": "TCP", "appProtocol": "tls"}
        ]
    });
    if let Some(addr) = gw.data["spec"]["addresses"]
        .as_array()
        .and_then(|a| a.first())
        && addr["type"].as_str().is_none_or(|t| t == "IPAddress")
        && svc_type == "LoadBalancer"
    {
        svc_spec["loadBalancerIP"] = addr["value"].clone();
    }
    let live = cluster.service(&ns, &name).and_then(|s| to_value(&*s));
    apply::apply(cluster, ISTIOD, &svc_ar, json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": owner, "labels": svc_labels,
                     "annotations": svc_annotations},
        "spec": svc_spec
    }), live).await?;

    // §1.4 status.
    let svc = cluster.service(&ns, &name);
    let host = format!("{name}.{ns}.svc.cluster.local");
    let (programmed, addresses) = match &svc {
        None => (
            (
                "False",
                "AddressNotAssigned",
                "Failed to assign to any requested addresses".to_string(),
            ),
            vec![],
        ),
        Some(svc) if svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") => {
            let ingress: Vec<Value> = svc
                .status
                .iter()
                .flat_map(|s| s.load_balancer.iter())
                .flat_map(|l| l.ingress.iter().flatten())
                .filter_map(|i| match (&i.ip, &i.hostname) {
                    (Some(ip), _) => Some(json!({"type": "IPAddress", "value": ip})),
                    (None, Some(h)) => Some(json!({"type": "Hostname", "value": h})),
                    _ => None,
                })
                .collect();
            if ingress.is_empty() {
                (
                    (
                        "False",
                        "AddressNotAssigned",
                        format!(
                            "Assigned to service(s) {host}:15008, {host}:15012, and {host}:15021, but failed to assign to all requested addresses: address pending for hostname \"{host}\""
                        ),
                    ),
                    vec![],
                )
            } else {
                (
                    (
                        "True",
                        "Programmed",
                        format!(
                            "Resource programmed, assigned to service(s) {host}:15008, {host}:15012, and {host}:15021"
                        ),
                    ),
                    ingress,
                )
            }
        }
        Some(_) => (
            (
                "True",
                "Programmed",
                format!(
                    "Resource programmed, assigned to service(s) {host}:15008, {host}:15012, and {host}:15021"
                ),
            ),
            vec![json!({"type": "Hostname", "value": host})],
        ),
    };
    let live_status = gw.data.get("status");
    let live_conds = live_status.and_then(|s| s.get("conditions"));
    let generation = gw.metadata.generation;
    let listeners: Vec<Value> = gw.data["spec"]["listeners"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let live_l = live_status
                .and_then(|s| s["listeners"].as_array())
                .and_then(|ls| ls.iter().find(|x| x["name"] == l["name"]));
            let lc = live_l.and_then(|x| x.get("conditions"));
            json!({"name": l["name"], "attachedRoutes": 0, "supportedKinds": [], "conditions": [
                condition(lc, "Accepted", "True", "Accepted", "No errors found", generation),
                condition(lc, "Programmed", "True", "Programmed", "No errors found", generation),
                condition(lc, "ResolvedRefs", "True", "ResolvedRefs", "No errors found", generation),
            ]})
        })
        .collect();
    let status = json!({
        "addresses": addresses,
        "conditions": [
            condition(live_conds, "Accepted", "True", "Accepted", "Resource accepted", generation),
            condition(live_conds, "Programmed", programmed.0, programmed.1, &programmed.2, generation),
        ],
        "listeners": listeners,
    });
    apply::apply_status(
        cluster,
        ISTIOD,
        &gateway_resource(),
        Some(&ns),
        &name,
        status,
        live_status,
    )
    .await?;
    Ok(())
}

/// §7.2: with `PEERING_AUTOMATIC_LOCAL_GATEWAY`, istiod makes a local `istio-remote` copy of each e/w gateway.
async fn automatic_local_peer(
    cluster: &Cluster,
    istiod: &Deployment,
    gw: &DynamicObject,
) -> apply::Result<()> {
    let l = labels(gw);
    let addresses = gw.data["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let missing: Vec<&str> = [
        (
            "label istio.io/expose-istiod",
            l.contains_key("istio.io/expose-istiod"),
        ),
        (
            "label topology.istio.io/cluster",
            l.contains_key("topology.istio.io/cluster"),
        ),
        (
            "label topology.istio.io/network",
            l.contains_key("topology.istio.io/network"),
        ),
        (
            "listener cross-network",
            listener_port(gw, "cross-network").is_some(),
        ),
        ("listener xds-tls", listener_port(gw, "xds-tls").is_some()),
        ("status.addresses", !addresses.is_empty()),
    ]
    .into_iter()
    .filter(|(_, ok)| !ok)
    .map(|(what, _)| what)
    .collect();
    if !missing.is_empty() {
        tracing::debug!(gateway = %gw.name_any(), "failed to generate peer gateway: missing {}", missing.join(", "));
        return Ok(());
    }
    let ns = gw.namespace().unwrap_or_default();
    let cluster_label = &l["topology.istio.io/cluster"];
    let name = format!("istio-remote-peer-{cluster_label}");
    let mut ann = json!({});
    for (k, v) in annotations(gw) {
        ann[k] = json!(v);
    }
    ann["gateway.istio.io/trust-domain"] = json!(operator::mesh_trust_domain(
        cluster,
        &istiod.namespace().unwrap_or_default()
    ));
    ann["gateway.istio.io/service-account"] = json!(gw.name_any());
    let body = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": name, "namespace": ns, "labels": l, "annotations": ann,
            "ownerReferences": [{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "name": gw.name_any(),
                                 "uid": gw.metadata.uid.clone().unwrap_or_default()}]},
        "spec": {
            "gatewayClassName": REMOTE_CLASS,
            "addresses": addresses,
            "listeners": [
                {"name": "cross-network", "port": listener_port(gw, "cross-network"), "protocol": "HBONE", "tls": {"mode": "Passthrough"}},
                {"name": "xds-tls", "port": listener_port(gw, "xds-tls"), "protocol": "TLS", "tls": {"mode": "Passthrough"}}
            ]
        }
    });
    let live = find_dynamic(&cluster.gateways, &ns, &name).and_then(|g| to_value(&*g));
    apply::apply(cluster, ISTIOD, &gateway_resource(), body, live).await?;
    Ok(())
}

/// Where an address leads: the cluster and east-west Service it belongs to (§2.1: LB ingress or the
/// `istio.io/expose-istiod-address` override of a Service labelled `istio.io/expose-istiod`).
fn find_peer(world: &World, address: &str) -> Option<(Arc<Cluster>, Arc<Service>)> {
    for c in &world.clusters {
        for svc in c.services.state() {
            if !svc.labels().contains_key("istio.io/expose-istiod") {
                continue;
            }
            let override_ =
                svc.annotations().get(ADDRESS_OVERRIDE).map(String::as_str) == Some(address);
            let ingress = svc
                .status
                .iter()
                .flat_map(|s| s.load_balancer.iter())
                .flat_map(|l| l.ingress.iter().flatten())
                .any(|i| {
                    i.ip.as_deref() == Some(address) || i.hostname.as_deref() == Some(address)
                });
            if override_ || ingress {
                return Some((c.clone(), svc));
            }
        }
    }
    None
}

/// Peering disabled on this istiod, and why (§2.4); None when peering runs.
fn peering_disabled(cluster: &Cluster, istiod: &Deployment) -> Option<&'static str> {
    let env = container_env(istiod, "discovery");
    if env.get("ENABLE_PEERING_DISCOVERY").map(String::as_str) != Some("true") {
        return Some("ENABLE_PEERING_DISCOVERY is not true");
    }
    if env.get("PILOT_ENABLE_AMBIENT").map(String::as_str) != Some("true") {
        return Some("peering discovery is disabled because ambient controllers are not enabled");
    }
    if env
        .get("PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES")
        .map(String::as_str)
        == Some("false")
    {
        return Some(
            "peering discovery is incompatible with PILOT_ENABLE_K8S_SELECT_WORKLOAD_ENTRIES=false",
        );
    }
    if !operator::license_valid(cluster, istiod) {
        return Some("license does not allow the MultiCluster feature");
    }
    None
}

/// `ValidatePeerGateway` (§2.3).
fn validate(gw: &DynamicObject) -> Result<(), String> {
    let l = labels(gw);
    let a = annotations(gw);
    if gw.data["spec"]["gatewayClassName"] != REMOTE_CLASS {
        return Err(format!("gateway class must be {REMOTE_CLASS}"));
    }
    if l.get("topology.istio.io/network")
        .is_none_or(|n| n.is_empty())
    {
        return Err("no topology.istio.io/network label found in gateway".into());
    }
    if gw.data["spec"]["addresses"]
        .as_array()
        .is_none_or(|a| a.is_empty())
    {
        if gw.data["status"]["addresses"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            return Err("no spec.addresses found in gateway (but found status.addresses)".into());
        }
        return Err("no spec.addresses found in gateway".into());
    }
    if a.get(NODEPORT_PREFERRED)
        .is_some_and(|v| v.eq_ignore_ascii_case("nodeport"))
    {
        if a.get("gateway.istio.io/service-account")
            .is_none_or(|v| v.is_empty())
        {
            return Err(format!(
                "{NODEPORT_PREFERRED} requires the gateway.istio.io/service-account annotation"
            ));
        }
        if l.get("topology.istio.io/cluster")
            .is_none_or(|v| v.is_empty())
        {
            return Err(format!(
                "{NODEPORT_PREFERRED} requires the topology.istio.io/cluster label"
            ));
        }
    }
    Ok(())
}

struct Peering {
    connected: Result<(), String>,
    synced: Result<(), String>,
    data_plane: (&'static str, &'static str, String),
}

fn decide(
    world: &World,
    local: &Cluster,
    local_istiod: &Deployment,
    gw: &DynamicObject,
) -> Peering {
    let addr = gw.data["spec"]["addresses"][0]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let l = labels(gw);
    let a = annotations(gw);
    let nodeport = a
        .get(NODEPORT_PREFERRED)
        .is_some_and(|v| v.eq_ignore_ascii_case("nodeport"));
    let hbone = gw.data["spec"]["listeners"].as_array().is_some_and(|ls| {
        ls.iter()
            .any(|l| l["name"] == "cross-network" && l["protocol"] == "HBONE")
    });
    let not_connected = |why: String| Peering {
        connected: Err(why),
        synced: Err("not connected".into()),
        data_plane: (
            "False",
            "Pending",
            "peering data plane not programmed: not connected to peer".into(),
        ),
    };
    let Some((peer, peer_svc)) = find_peer(world, &addr) else {
        return not_connected(format!(
            "dial {addr}: no east-west gateway answers at this address"
        ));
    };
    if peer.name == local.name {
        return not_connected(format!("{addr} is this cluster's own east-west gateway"));
    }
    let Some(peer_istiod) = operator::running_istiod(&peer) else {
        return not_connected(format!("{}: istiod is not running", peer.name));
    };
    if let Some(why) = peering_disabled(&peer, &peer_istiod) {
        return not_connected(format!(
            "{}: peer istiod does not serve peering: {why}",
            peer.name
        ));
    }
    let xds = listener_port(gw, "xds-tls").unwrap_or(15012);
    let svc_xds = peer_svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.name.as_deref() == Some("tls-xds"))
                .map(|p| i64::from(p.port))
        });
    if svc_xds != Some(xds) {
        return not_connected(format!("dial {addr}:{xds}: connection refused"));
    }
    let local_root = operator::istiod_root_fingerprint(local, local_istiod);
    let peer_root = operator::istiod_root_fingerprint(&peer, &peer_istiod);
    if local_root.is_none() || local_root != peer_root {
        return not_connected(format!(
            "tls: failed to verify certificate: x509: certificate signed by unknown authority (local root {}, peer root {})",
            local_root.as_deref().unwrap_or("none"),
            peer_root.as_deref().unwrap_or("none")
        ));
    }
    let delay = Faults::read(local).peering_delay;
    let key = format!(
        "peer/{}/{}/{addr}",
        local.name,
        gw.metadata.uid.clone().unwrap_or_default()
    );
    if !world.held_for_at_least(&key, true, delay) {
        return not_connected(format!(
            "peering slowed down by the peering-delay-seconds knob ({}s)",
            delay.as_secs()
        ));
    }

    // Connected. Now is the network synced? (§9 P5: trust domain; the identity labels must be the peer's.)
    let peer_env = container_env(&peer_istiod, "discovery");
    let peer_ns = peer_istiod.namespace().unwrap_or_default();
    let peer_td = operator::mesh_trust_domain(&peer, &peer_ns);
    let peer_cluster = peer_env.get("CLUSTER_ID").cloned().unwrap_or_default();
    let peer_network = peer_svc
        .labels()
        .get("topology.istio.io/network")
        .cloned()
        .unwrap_or_default();
    let want_td = a
        .get("gateway.istio.io/trust-domain")
        .cloned()
        .unwrap_or_default();
    let gw_network = l
        .get("topology.istio.io/network")
        .cloned()
        .unwrap_or_default();
    let gw_cluster = l
        .get("topology.istio.io/cluster")
        .cloned()
        .unwrap_or_else(|| gw_network.clone());
    let synced = if want_td != peer_td {
        Err(format!(
            "no cert pool found for trust domain {want_td:?} (peer trust domain is {peer_td:?})"
        ))
    } else if gw_network != peer_network {
        Err(format!(
            "network {gw_network:?} does not match the peer's network {peer_network:?}"
        ))
    } else if gw_cluster != peer_cluster {
        Err(format!(
            "cluster {gw_cluster:?} does not match the peer's cluster ID {peer_cluster:?}"
        ))
    } else {
        Ok(())
    };
    let data_plane = if synced.is_err() {
        (
            "False",
            "Pending",
            "peering data plane not programmed: network not yet synced".to_string(),
        )
    } else if nodeport {
        let peer_nodeport = peer_svc
            .annotations()
            .get(NODEPORT_DATA_PLANE)
            .is_some_and(|v| v.eq_ignore_ascii_case("nodeport"))
            && peer_svc
                .spec
                .as_ref()
                .and_then(|s| s.ports.as_ref())
                .is_some_and(|ps| {
                    ps.iter().any(|p| {
                        p.name.as_deref().is_some_and(|n| n.contains("hbone"))
                            && p.node_port.is_some()
                    })
                });
        let gw_name = peer_svc
            .labels()
            .get("gateway.networking.k8s.io/gateway-name")
            .cloned()
            .unwrap_or_default();
        let nodes_with_pods = peer
            .pods
            .state()
            .iter()
            .filter(|p| p.labels().get("gateway.networking.k8s.io/gateway-name") == Some(&gw_name))
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        if !peer_nodeport {
            ("False", "Pending", "peering data plane not programmed for cross-network traffic with NodePort service type: gateway-based service entry has not been generated yet".into())
        } else if nodes_with_pods == 0 {
            ("False", "Pending", "peering data plane not programmed for cross-network traffic with NodePort service type: no node workload entries generated yet".into())
        } else {
            ("True", "Programmed", "peering data plane programmed for cross-network traffic with NodePort service type".into())
        }
    } else if hbone {
        ("True", "Programmed", "peering data plane programmed for cross-network traffic with LoadBalancer service type".into())
    } else {
        ("False", "Invalid", "peering data plane not programmed for cross-network traffic with LoadBalancer service type: missing HBONE listener".into())
    };
    Peering {
        connected: Ok(()),
        synced,
        data_plane,
    }
}

/// §2.3: the Istio controller's part (Accepted, Programmed, addresses) and the Solo peering controller's part.
async fn remote(
    world: &World,
    cluster: &Cluster,
    istiod: &Deployment,
    gw: &DynamicObject,
) -> apply::Result<()> {
    let name = gw.name_any();
    let ns = gw.namespace().unwrap_or_default();
    let live_status = gw.data.get("status");
    let live_conds = live_status.and_then(|s| s.get("conditions"));
    let generation = gw.metadata.generation;
    let cond = |t: &str, s: &str, r: &str, m: &str| condition(live_conds, t, s, r, m, generation);
    let status = json!({
        "addresses": gw.data["spec"]["addresses"].as_array().cloned().unwrap_or_default(),
        "conditions": [
            cond("Accepted", "True", "Accepted", "Resource accepted"),
            cond("Programmed", "True", "Programmed", "This Gateway is remote; Istio will not program it"),
        ],
    });
    apply::apply_status(
        cluster,
        ISTIOD,
        &gateway_resource(),
        Some(&ns),
        &name,
        status,
        live_status,
    )
    .await?;

    if let Some(why) = peering_disabled(cluster, istiod) {
        tracing::debug!(gateway = %name, "peering controller not running: {why}");
        return Ok(());
    }
    let env = container_env(istiod, "discovery");
    let local_id = env.get("CLUSTER_ID").cloned().unwrap_or_default();
    let l = labels(gw);
    let peer_cluster = l
        .get("topology.istio.io/cluster")
        .or_else(|| l.get("topology.istio.io/network"))
        .cloned()
        .unwrap_or_default();
    if peer_cluster == local_id {
        tracing::debug!(gateway = %name, "peer gateway to {peer_cluster} is for local cluster network, ignoring");
        return Ok(());
    }
    let (conditions, detail) = match validate(gw) {
        Err(e) => {
            let msg = format!("no network started, encountered error validating gateway: {e}");
            (
                vec![
                    cond("gloo.solo.io/PeerConnected", "False", "Invalid", &msg),
                    cond("gloo.solo.io/PeeringSucceeded", "False", "Invalid", &msg),
                    cond(
                        "gloo.solo.io/PeerDataPlaneProgrammed",
                        "False",
                        "Invalid",
                        &msg,
                    ),
                ],
                e,
            )
        }
        Ok(()) => {
            let p = decide(world, cluster, istiod, gw);
            let detail = match (&p.connected, &p.synced) {
                (Err(e), _) => format!("not connected: {e}"),
                (Ok(()), Err(e)) => format!("connected, not synced: {e}"),
                (Ok(()), Ok(())) => format!("peered ({})", p.data_plane.2),
            };
            (
                vec![
                    match &p.connected {
                        Ok(()) => cond(
                            "gloo.solo.io/PeerConnected",
                            "True",
                            "Programmed",
                            "connected to peer",
                        ),
                        Err(_) => cond(
                            "gloo.solo.io/PeerConnected",
                            "False",
                            "Pending",
                            "not connected to peer",
                        ),
                    },
                    match &p.synced {
                        Ok(()) => cond(
                            "gloo.solo.io/PeeringSucceeded",
                            "True",
                            "Programmed",
                            "remote network synced",
                        ),
                        Err(_) => cond(
                            "gloo.solo.io/PeeringSucceeded",
                            "Unknown",
                            "Pending",
                            "network not yet synced check istiod log for more details",
                        ),
                    },
                    cond(
                        "gloo.solo.io/PeerDataPlaneProgrammed",
                        p.data_plane.0,
                        p.data_plane.1,
                        &p.data_plane.2,
                    ),
                ],
                detail,
            )
        }
    };
    let changed = apply::apply_status(
        cluster,
        PEERING,
        &gateway_resource(),
        Some(&ns),
        &name,
        json!({"conditions": conditions}),
        live_status,
    )
    .await?;
    if changed {
        tracing::info!(gateway = %format!("{ns}/{name}"), "peering: {detail}");
    }
    Ok(())
}
