//! What each watch keeps of an object.

use super::*;

fn workload_of_deployment(d: &Deployment) -> WorkloadState {
    let count = |n: Option<i32>| u32::try_from(n.unwrap_or(0)).unwrap_or(0);
    WorkloadState {
        desired: count(Some(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1))),
        ready: count(d.status.as_ref().and_then(|s| s.ready_replicas)),
    }
}

pub(super) fn keep_istiod(d: &Deployment) -> Option<IstiodState> {
    Some(IstiodState {
        pods: workload_of_deployment(d),
        revision: d.labels().get("istio.io/rev").cloned(),
    })
}

pub(super) fn keep_deployment(d: &Deployment) -> Option<WorkloadState> {
    Some(workload_of_deployment(d))
}

pub(super) fn keep_daemonset(d: &DaemonSet) -> Option<WorkloadState> {
    let count = |n: i32| u32::try_from(n).unwrap_or(0);
    let status = d.status.as_ref();
    Some(WorkloadState {
        desired: count(status.map_or(0, |s| s.desired_number_scheduled)),
        ready: count(status.map_or(0, |s| s.number_ready)),
    })
}

pub(super) fn keep_gateway(g: &DynamicObject) -> Option<GatewayEntry> {
    if let Some(ew) = EastWestState::from_gateway(g) {
        return Some(GatewayEntry::EastWest(
            ew,
            g.labels().get(REGION_LABEL).cloned(),
        ));
    }
    PeerGatewayState::from_gateway(g).map(GatewayEntry::Peer)
}

pub(super) fn keep_smc(smc: &DynamicObject) -> Option<SmcState> {
    Some(SmcState::from_object(smc))
}

/// Only the root's fingerprint: the Secret, with the intermediate's key, is dropped as soon as it is read.
pub(super) fn keep_cacerts(secret: &Secret) -> Option<Option<String>> {
    Some(crate::ca::secret_root_fingerprint(secret))
}

/// The trust domain of a mesh ConfigMap (key `mesh`), with mesh config's default `cluster.local`.
pub(super) fn keep_trust_domain(cm: &ConfigMap) -> Option<String> {
    let mesh = cm.data.as_ref().and_then(|d| d.get("mesh"));
    Some(
        mesh.and_then(|m| {
            crate::yaml::from_str::<Value>(m, &crate::yaml::Limits::CLUSTER_VALUE).ok()
        })
        .and_then(|v| v["trustDomain"].as_str().map(String::from))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "cluster.local".into()),
    )
}

pub(super) fn keep_labels<K: Resource>(o: &PartialObjectMeta<K>) -> Option<Labels> {
    Some(o.labels().clone())
}

pub(super) fn by_name(name: &str) -> watcher::Config {
    watcher::Config::default().fields(&format!("metadata.name={name}"))
}
