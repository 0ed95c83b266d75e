//! What the cluster's infrastructure offers the east-west gateway: load-balancer addresses (the probe) and
//! nodes (virtual nodes, node addresses for NodePort peering).

use super::*;

pub(super) async fn load_balancers(
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
pub(super) async fn nodes(client: &Client, c: &ClusterSetup, settings: &Settings) -> Vec<Finding> {
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

pub(super) fn virtual_nodes(nodes: &[Node]) -> Finding {
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
