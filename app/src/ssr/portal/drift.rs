//! Drift as the cluster watches see it, with no request to any cluster: the topology's watches keep the
//! labels of every namespace in the mesh or sharing its services, and of the Services in those namespaces or
//! labelled with a scope. An object the portal labelled that has left those sets lost the labels that put it
//! there. Annotations are not watched: the team page reads them when it loads.
//!
//! Drift found (and drift gone) is an audit record: [`record_drift`] runs for as long as the console does,
//! woken by the topology's frames. A drift is recorded once it has lasted [`CONFIRM`] (an object the portal
//! has just labelled, or a namespace whose Services are still being listed, looks drifted for a moment),
//! and once only: the object's row keeps the drift last recorded, and of several consoles only the one
//! whose conditional update changed it writes the record.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use mesh::portal::{self, DATAPLANE_LABEL, INJECTION_LABEL, Owned, REVISION_LABEL, SCOPE_LABEL};
use mesh::topology::ClusterSnapshot;

use super::owned_of;
use crate::model::{ClusterName, PortalDrift};
use crate::ssr::state::AppState;
use crate::ssr::store::{NewAudit, ObjectRow, Store};
use crate::ssr::topology::Topology;

/// How long a drift (or its end) must last before it is recorded.
pub const CONFIRM: Duration = Duration::from_secs(5);

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

/// One object: (cluster, namespace, service or '').
type Key = (String, String, String);

/// Drift seen but not yet recorded: what it is and since when.
#[derive(Default)]
struct Unconfirmed(HashMap<Key, (String, Instant)>);

impl Unconfirmed {
    /// Whether `drift`, seen now on `key` and differing from what was recorded, has lasted long enough to
    /// be recorded; else when to look again.
    fn lasted(&mut self, key: &Key, drift: &str, now: Instant) -> Result<(), Instant> {
        let since = match self.0.get(key) {
            Some((d, at)) if d == drift => *at,
            _ => {
                self.0.insert(key.clone(), (drift.to_string(), now));
                now
            }
        };
        if now.duration_since(since) >= CONFIRM {
            self.0.remove(key);
            Ok(())
        } else {
            Err(since + CONFIRM)
        }
    }

    /// Forgets what is no longer seen differing from the record.
    fn keep_only(&mut self, keys: &HashSet<Key>) {
        self.0.retain(|k, _| keys.contains(k));
    }
}

/// Records drift found and drift gone in the audit, for as long as the process runs.
pub fn record_drift(state: &AppState) {
    let store = state.store.clone();
    let topology = state.topology.clone();
    let mut frames = topology.subscribe();
    tokio::spawn(async move {
        let mut unconfirmed = Unconfirmed::default();
        loop {
            let again = audit_once(&store, &topology, &mut unconfirmed).await;
            let wait = async {
                match again {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = frames.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    frames.borrow_and_update();
                }
                () = wait => {}
            }
        }
    });
}

/// Compares what the watches see with what was recorded; records what has lasted. Returns when to look
/// again (a drift not yet confirmed), if ever.
async fn audit_once(
    store: &Store,
    topology: &Topology,
    unconfirmed: &mut Unconfirmed,
) -> Option<Instant> {
    let rows = match store.portal_objects(None).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!("drift audit: reading what the portal keeps applied: {e}");
            return Some(Instant::now() + CONFIRM);
        }
    };
    let drift = watched_drift(&rows, |c| {
        ClusterName::new(c).ok().and_then(|n| topology.snapshot(&n))
    });
    let by_key: HashMap<Key, &ObjectRow> = rows
        .iter()
        .map(|r| {
            (
                (r.cluster.clone(), r.namespace.clone(), r.service.clone()),
                r,
            )
        })
        .collect();
    let now = Instant::now();
    let mut again: Option<Instant> = None;
    let mut differing = HashSet::new();
    for d in drift {
        let key = (d.cluster, d.namespace, d.service.unwrap_or_default());
        let Some(row) = by_key.get(&key) else {
            continue;
        };
        let text = d.drift.join("; ");
        if row.drift == text {
            continue;
        }
        differing.insert(key.clone());
        if let Err(at) = unconfirmed.lasted(&key, &text, now) {
            again = Some(again.map_or(at, |a| a.min(at)));
            continue;
        }
        let subject = if row.service.is_empty() {
            format!("namespace {}", row.namespace)
        } else {
            format!("service {}/{}", row.namespace, row.service)
        };
        let detail = if text.is_empty() {
            "in step again: what the portal applied is there".to_string()
        } else {
            format!("{text}; the team can re-apply it from its page")
        };
        let record = NewAudit {
            actor: "meshdeck",
            team: &row.team,
            cluster: &row.cluster,
            kind: if text.is_empty() { "in-step" } else { "drift" },
            subject: &subject,
            detail: &detail,
            ..Default::default()
        };
        if let Err(e) = store.record_drift(row, &text, &record).await {
            tracing::warn!(cluster = %row.cluster, "drift audit: recording the drift of {subject}: {e}");
        }
    }
    unconfirmed.keep_only(&differing);
    again
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
            drift: String::new(),
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

    #[test]
    fn a_drift_is_recorded_once_it_has_lasted_and_a_change_of_it_starts_the_wait_again() {
        let mut u = Unconfirmed::default();
        let key: Key = ("c1".into(), "pay".into(), String::new());
        let t0 = Instant::now();
        assert_eq!(u.lasted(&key, "label x removed", t0), Err(t0 + CONFIRM));
        assert_eq!(
            u.lasted(&key, "label x removed", t0 + CONFIRM / 2),
            Err(t0 + CONFIRM),
            "the wait counts from when it was first seen"
        );
        let t1 = t0 + CONFIRM / 2;
        assert_eq!(
            u.lasted(&key, "label y removed", t1),
            Err(t1 + CONFIRM),
            "another drift waits anew"
        );
        assert_eq!(u.lasted(&key, "label y removed", t1 + CONFIRM), Ok(()));
        // Recorded: forgotten, so the same drift seen again (after a re-apply and another removal) waits.
        assert_eq!(
            u.lasted(&key, "label y removed", t1 + CONFIRM * 3),
            Err(t1 + CONFIRM * 4)
        );
        // Gone before it lasted (the watch caught up): forgotten.
        u.keep_only(&HashSet::new());
        assert!(u.0.is_empty());
    }
}
