//! Drift as the cluster watches see it, with no request to any cluster: the topology's watches keep the
//! labels of every namespace in the mesh or sharing its services, and of the Services in those namespaces or
//! labelled with a scope. An object the portal labelled that has left those sets lost the labels that put it
//! there. Annotations are not watched: the team page reads them when it loads.

use std::collections::BTreeMap;

use mesh::portal::{self, DATAPLANE_LABEL, INJECTION_LABEL, Owned, REVISION_LABEL, SCOPE_LABEL};
use mesh::topology::ClusterSnapshot;

use super::owned_of;
use crate::model::PortalDrift;
use crate::ssr::store::ObjectRow;

/// The labels whose presence puts an object in the watched sets.
const WATCHED: [&str; 4] = [
    INJECTION_LABEL,
    REVISION_LABEL,
    DATAPLANE_LABEL,
    SCOPE_LABEL,
];

/// The drift of each object (in step ones included, with no drift); objects of clusters not watched or not
/// reachable now are left out (nothing can be said of them).
pub fn watched_drift(
    rows: &[ObjectRow],
    snapshot_of: impl Fn(&str) -> Option<ClusterSnapshot>,
) -> Vec<PortalDrift> {
    let mut snapshots: BTreeMap<&str, Option<ClusterSnapshot>> = BTreeMap::new();
    let mut out = vec![];
    for r in rows {
        let snap = snapshots
            .entry(r.cluster.as_str())
            .or_insert_with(|| snapshot_of(&r.cluster).filter(|s| s.unreachable.is_none()));
        let Some(snap) = snap.as_ref() else { continue };
        let owned = owned_of(r);
        let labels_only = Owned {
            labels: owned.labels.clone(),
            annotations: Default::default(),
        };
        let ns = snap.namespaces.iter().find(|n| n.name == r.namespace);
        let live_labels = match (r.service.is_empty(), ns) {
            (true, Some(n)) => Some(n.labels.clone()),
            (false, Some(n)) => n
                .services
                .iter()
                .find(|s| s.name == r.service)
                .map(|s| s.labels.clone()),
            (_, None) => None,
        };
        let drift = match live_labels {
            Some(labels) => portal::drift(
                &labels_only,
                Some(&portal::Live {
                    labels,
                    ..Default::default()
                }),
            ),
            None => owned
                .labels
                .iter()
                .filter(|(k, _)| WATCHED.contains(&k.as_str()))
                .map(|(k, v)| format!("label {k}={v} was removed"))
                .collect(),
        };
        out.push(PortalDrift {
            cluster: r.cluster.clone(),
            namespace: r.namespace.clone(),
            service: (!r.service.is_empty()).then(|| r.service.clone()),
            drift,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh::ids::ClusterName;
    use mesh::topology::{NamespaceState, ServiceState};

    fn row(ns: &str, svc: &str, labels: &[(&str, &str)]) -> ObjectRow {
        let l: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ObjectRow {
            cluster: "c1".into(),
            namespace: ns.into(),
            service: svc.into(),
            team: "t".into(),
            labels: serde_json::to_string(&l).expect("json"),
            annotations: "{}".into(),
            job_id: "j".into(),
            updated_at: 0,
        }
    }

    #[test]
    fn an_object_that_left_the_watched_sets_lost_its_labels_and_one_still_there_is_compared() {
        let mut snap = ClusterSnapshot::new(ClusterName::new("c1").expect("name"));
        snap.namespaces = vec![NamespaceState {
            name: "pay".into(),
            labels: [("istio-injection".to_string(), "enabled".to_string())].into(),
            services: vec![ServiceState {
                name: "web".into(),
                labels: Default::default(),
            }],
        }];
        let rows = [
            row(
                "pay",
                "",
                &[("istio-injection", "enabled"), ("meshdeck.io/team", "t")],
            ),
            row("pay", "web", &[("solo.io/service-scope", "global")]),
            row("gone", "", &[("istio.io/dataplane-mode", "ambient")]),
        ];
        let d = watched_drift(&rows, |_| Some(snap.clone()));
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].drift, vec!["label meshdeck.io/team=t was removed"]);
        assert_eq!(
            d[1].drift,
            vec!["label solo.io/service-scope=global was removed"]
        );
        assert_eq!(
            d[2].drift,
            vec!["label istio.io/dataplane-mode=ambient was removed"]
        );
        assert!(
            watched_drift(&rows, |_| None).is_empty(),
            "unwatched: nothing said"
        );
    }
}
