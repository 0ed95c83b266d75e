//! The Gloo management plane's config distribution (mesh-spec.md §7.1–7.2), as far as automatic peering
//! needs it: a management server with the `ConfigDistribution` feature gate collects the `istio-remote`
//! peer gateways that each member cluster's istiod generated locally and copies them to the management
//! cluster and to every other member. Members are the clusters whose agent relays to that server's address.
//! Installed through the stand-in chart `testenv/charts/gloo-platform`.

use std::collections::BTreeSet;
use std::sync::Arc;

use kube::ResourceExt;
use kube::api::DynamicObject;
use serde_json::json;

use crate::apply::{self, AGENT, to_value};
use crate::cluster::{Cluster, find_dynamic, gateway_resource};
use crate::gateways::REMOTE_CLASS;
use crate::operator::container_env;
use crate::world::World;

pub const DISTRIBUTED_FROM: &str = "gloo.solo.io/distributed-from";

fn ready_deployment(
    cluster: &Cluster,
    name: &str,
) -> Option<Arc<k8s_openapi::api::apps::v1::Deployment>> {
    cluster.deployments.state().into_iter().find(|d| {
        d.metadata.name.as_deref() == Some(name)
            && d.status
                .as_ref()
                .and_then(|s| s.ready_replicas)
                .unwrap_or(0)
                > 0
    })
}

/// The relay address of a management server: its Service's LB address.
fn server_address(cluster: &Cluster, ns: &str) -> Option<String> {
    let svc = cluster.service(ns, "gloo-mesh-mgmt-server")?;
    let ing = svc
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?
        .clone();
    ing.ip.or(ing.hostname)
}

/// Generated local peers: `istio-remote` Gateways owned by an east-west Gateway (§7.2).
fn local_peers(cluster: &Cluster) -> Vec<Arc<DynamicObject>> {
    cluster
        .gateways_of_class(REMOTE_CLASS)
        .into_iter()
        .filter(|g| g.owner_references().iter().any(|o| o.kind == "Gateway"))
        .collect()
}

pub async fn reconcile(world: &World, cluster: &Cluster) -> apply::Result<()> {
    let Some(server) = ready_deployment(cluster, "gloo-mesh-mgmt-server") else {
        return Ok(());
    };
    let env = container_env(&server, "gloo-mesh-mgmt-server");
    if !env
        .get("FEATURE_GATES")
        .is_some_and(|g| g.split(',').any(|f| f.trim() == "ConfigDistribution=true"))
    {
        return Ok(());
    }
    let ns = server.namespace().unwrap_or_default();
    let Some(address) = server_address(cluster, &ns) else {
        return Ok(());
    };
    let own_name = env
        .get("CLUSTER_NAME")
        .filter(|n| !n.is_empty())
        .cloned()
        .unwrap_or_else(|| cluster.name.clone());

    // Members: this cluster plus every cluster whose agent relays here.
    let mut members: Vec<(Arc<Cluster>, String)> = Vec::new();
    for c in &world.clusters {
        if let Some(agent) = ready_deployment(c, "gloo-mesh-agent") {
            let aenv = container_env(&agent, "gloo-mesh-agent");
            let relay = aenv.get("RELAY_ADDRESS").cloned().unwrap_or_default();
            let host = relay
                .rsplit_once(':')
                .map(|(h, _)| h.to_string())
                .unwrap_or(relay);
            if host == address {
                let name = aenv
                    .get("CLUSTER_NAME")
                    .cloned()
                    .unwrap_or_else(|| c.name.clone());
                members.push((c.clone(), name));
            }
        }
    }
    if !members.iter().any(|(c, _)| c.name == cluster.name)
        && let Some(me) = world.cluster(&cluster.name)
    {
        members.push((me.clone(), own_name));
    }

    let ar = gateway_resource();
    let mut wanted: Vec<(String, BTreeSet<(String, String)>)> = Vec::new(); // per target: (ns, name)
    for (target, _) in &members {
        let mut keep = BTreeSet::new();
        for (source, source_name) in &members {
            if source.name == target.name {
                continue;
            }
            for gw in local_peers(source) {
                let gns = gw.namespace().unwrap_or_default();
                if target.namespace(&gns).is_none() {
                    continue; // the target has no such namespace yet (no e/w gateway there)
                }
                let mut labels = json!(gw.labels());
                labels[DISTRIBUTED_FROM] = json!(source_name);
                let body = json!({
                    "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": gw.name_any(), "namespace": gns, "labels": labels,
                                 "annotations": gw.annotations()},
                    "spec": gw.data["spec"],
                });
                let live = find_dynamic(&target.gateways, &gns, &gw.name_any());
                if live
                    .as_ref()
                    .is_some_and(|l| !l.labels().contains_key(DISTRIBUTED_FROM))
                {
                    continue; // a local object of that name exists; never overwrite it
                }
                apply::apply(target, AGENT, &ar, body, live.and_then(|l| to_value(&*l))).await?;
                keep.insert((gns, gw.name_any()));
            }
        }
        wanted.push((target.name.clone(), keep));
    }
    // Copies whose source is gone are removed.
    for (target_name, keep) in wanted {
        let Some(target) = world.cluster(&target_name) else {
            continue;
        };
        for gw in target.gateways.state() {
            if gw.labels().contains_key(DISTRIBUTED_FROM)
                && !keep.contains(&(gw.namespace().unwrap_or_default(), gw.name_any()))
            {
                apply::delete(target, &ar, gw.namespace().as_deref(), &gw.name_any()).await?;
            }
        }
    }
    Ok(())
}
