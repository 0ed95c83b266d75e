//! A cloud load-balancer controller (mesh-spec.md §1.3, §9 P1/P12): gives every Service of type
//! LoadBalancer an address in `status.loadBalancer.ingress` — an IP from the documentation ranges
//! (192.0.2.0/24, then 198.51.100.0/24 and 203.0.113.0/24), unique across all clusters, or a hostname when the
//! cluster's `lb-address-type` knob says Hostname. No traffic is ever sent to these addresses.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::ApiResource;
use serde_json::json;

use crate::apply::{self, LB};
use crate::cluster::Cluster;
use crate::faults::Faults;
use crate::world::World;

fn is_lb(s: &Service) -> bool {
    s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("LoadBalancer")
}

fn assigned(s: &Service) -> bool {
    s.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|l| l.ingress.as_ref())
        .is_some_and(|i| !i.is_empty())
}

fn used_ips(world: &World) -> HashSet<Ipv4Addr> {
    let mut used = HashSet::new();
    for c in &world.clusters {
        for s in c.services.state() {
            for ing in s
                .status
                .iter()
                .flat_map(|st| st.load_balancer.iter())
                .flat_map(|l| l.ingress.iter().flatten())
            {
                if let Some(ip) = ing.ip.as_ref().and_then(|ip| ip.parse().ok()) {
                    used.insert(ip);
                }
            }
        }
    }
    used
}

fn pool() -> impl Iterator<Item = Ipv4Addr> {
    [[192u8, 0, 2], [198, 51, 100], [203, 0, 113]]
        .into_iter()
        .flat_map(|[a, b, c]| (1u8..=254).map(move |d| Ipv4Addr::new(a, b, c, d)))
}

pub async fn reconcile(world: &World, cluster: &Cluster) -> apply::Result<()> {
    let faults = Faults::read(cluster);
    if faults.lb_never_assigned {
        return Ok(());
    }
    let pending: Vec<_> = cluster
        .services
        .state()
        .into_iter()
        .filter(|s| is_lb(s) && !assigned(s))
        .collect();
    if pending.is_empty() {
        return Ok(());
    }
    let ar = ApiResource::erase::<Service>(&());
    for svc in pending {
        let ns = svc.namespace().unwrap_or_default();
        let name = svc.name_any();
        let ingress = if faults.lb_hostname {
            json!({"hostname": format!("{name}-{ns}.{}.elb.example.com", cluster.name)})
        } else {
            // The allocator is global: the same address must never belong to two clusters.
            let _guard = world.lb_lock().await;
            let used = used_ips(world);
            let requested = svc
                .spec
                .as_ref()
                .and_then(|s| s.load_balancer_ip.as_ref())
                .and_then(|ip| ip.parse().ok());
            let ip = match requested {
                Some(ip) if !used.contains(&ip) => Some(ip),
                _ => pool().find(|ip| !used.contains(ip) && !world.lb_reserved(ip)),
            };
            let Some(ip) = ip else {
                tracing::warn!("no free documentation address left for Service {ns}/{name}");
                continue;
            };
            world.lb_reserve(ip);
            json!({"ip": ip.to_string(), "ipMode": "VIP"})
        };
        let live = svc.status.as_ref().and_then(apply::to_value);
        apply::apply_status(
            cluster,
            LB,
            &ar,
            Some(&ns),
            &name,
            json!({"loadBalancer": {"ingress": [ingress]}}),
            live.as_ref(),
        )
        .await?;
        tracing::info!(service = %format!("{ns}/{name}"), "assigned load balancer address {ingress}");
    }
    Ok(())
}
