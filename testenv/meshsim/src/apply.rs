//! Writes of the simulated controllers: server-side apply, skipped when the live object already holds every
//! field we would write (so a steady world makes no requests), and condition helpers that keep
//! `lastTransitionTime` stable while a condition's status does not change.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::cluster::Cluster;

/// Field managers, one per simulated component.
pub const OPERATOR: &str = "gloo-operator";
pub const ISTIOD: &str = "istiod";
pub const LB: &str = "meshsim-cloud-lb";
pub const AGENT: &str = "gloo-mesh-agent";
pub const PEERING: &str = "istiod-peering";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{cluster}: applying {kind} {name}: {source}")]
    Kube {
        cluster: String,
        kind: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// True when every field of `want` is present with the same value in `live`. Objects compare as subsets,
/// arrays element by element (the server may add defaulted fields inside elements).
pub fn is_subset(want: &Value, live: &Value) -> bool {
    match (want, live) {
        (Value::Object(w), Value::Object(l)) => w.iter().all(|(k, v)| match l.get(k) {
            Some(lv) => is_subset(v, lv),
            None => {
                v.is_null()
                    || v.as_object().is_some_and(|o| o.is_empty())
                    || v.as_array().is_some_and(|a| a.is_empty())
            }
        }),
        // Conditions are map-lists keyed by `type`: other writers may own other entries.
        (Value::Array(w), Value::Array(l))
            if !w.is_empty()
                && w.iter()
                    .all(|e| e["type"].is_string() && e["status"].is_string()) =>
        {
            w.iter().all(|e| {
                l.iter()
                    .any(|le| le["type"] == e["type"] && is_subset(e, le))
            })
        }
        (Value::Array(w), Value::Array(l)) => {
            w.len() == l.len() && w.iter().zip(l).all(|(a, b)| is_subset(a, b))
        }
        (w, l) => w == l,
    }
}

fn api(cluster: &Cluster, ar: &ApiResource, ns: Option<&str>) -> Api<DynamicObject> {
    match ns {
        Some(ns) => Api::namespaced_with(cluster.client.clone(), ns, ar),
        None => Api::all_with(cluster.client.clone(), ar),
    }
}

/// Server-side applies `body` (a full object with apiVersion/kind/metadata) unless `live` already holds it.
pub async fn apply(
    cluster: &Cluster,
    manager: &str,
    ar: &ApiResource,
    body: Value,
    live: Option<Value>,
) -> Result<bool> {
    if live.as_ref().is_some_and(|l| is_subset(&body, l)) {
        return Ok(false);
    }
    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ns = body["metadata"]["namespace"].as_str().map(String::from);
    api(cluster, ar, ns.as_deref())
        .patch(
            &name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| Error::Kube {
            cluster: cluster.name.clone(),
            kind: ar.kind.clone(),
            name: name.clone(),
            source,
        })?;
    tracing::debug!(cluster = %cluster.name, kind = %ar.kind, %name, "applied");
    Ok(true)
}

/// Server-side applies the status subresource. `status` is the `status` value only.
pub async fn apply_status(
    cluster: &Cluster,
    manager: &str,
    ar: &ApiResource,
    ns: Option<&str>,
    name: &str,
    status: Value,
    live_status: Option<&Value>,
) -> Result<bool> {
    if live_status.is_some_and(|l| is_subset(&status, l)) {
        return Ok(false);
    }
    let body = json!({
        "apiVersion": ar.api_version,
        "kind": ar.kind,
        "metadata": {"name": name},
        "status": status,
    });
    api(cluster, ar, ns)
        .patch_status(
            name,
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|source| Error::Kube {
            cluster: cluster.name.clone(),
            kind: format!("{}/status", ar.kind),
            name: name.to_string(),
            source,
        })?;
    tracing::debug!(cluster = %cluster.name, kind = %ar.kind, %name, "applied status");
    Ok(true)
}

/// Merge-patches the status subresource (used for Pods, whose status kwok also writes).
pub async fn merge_status(
    cluster: &Cluster,
    ar: &ApiResource,
    ns: &str,
    name: &str,
    status: Value,
) -> Result<()> {
    api(cluster, ar, Some(ns))
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "status": status })),
        )
        .await
        .map_err(|source| Error::Kube {
            cluster: cluster.name.clone(),
            kind: format!("{}/status", ar.kind),
            name: name.to_string(),
            source,
        })?;
    Ok(())
}

pub async fn delete(
    cluster: &Cluster,
    ar: &ApiResource,
    ns: Option<&str>,
    name: &str,
) -> Result<()> {
    match api(cluster, ar, ns).delete(name, &Default::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(Error::Kube {
            cluster: cluster.name.clone(),
            kind: ar.kind.clone(),
            name: name.to_string(),
            source,
        }),
    }
}

/// A condition as metav1.Condition, keeping the live `lastTransitionTime` when the status is unchanged.
pub fn condition(
    live_conditions: Option<&Value>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
) -> Value {
    let previous = live_conditions
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_));
    let ltt = match previous {
        Some(p) if p["status"] == status => p["lastTransitionTime"].clone(),
        _ => json!(now()),
    };
    let mut c = json!({
        "type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": ltt,
    });
    if let Some(g) = generation {
        c["observedGeneration"] = json!(g);
    }
    c
}

pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn to_value<T: serde::Serialize>(t: &T) -> Option<Value> {
    serde_json::to_value(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_ignores_server_defaults_but_sees_changes() {
        let want = json!({"spec": {"ports": [{"name": "a", "port": 1}]}});
        let live = json!({"spec": {"ports": [{"name": "a", "port": 1, "protocol": "TCP"}], "clusterIP": "10.0.0.1"}});
        assert!(is_subset(&want, &live));
        let changed = json!({"spec": {"ports": [{"name": "a", "port": 2}]}});
        assert!(!is_subset(&changed, &live));
        let longer =
            json!({"spec": {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}});
        assert!(!is_subset(&longer, &live));
    }

    #[test]
    fn conditions_compare_by_type() {
        let live = json!({"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "False"}]});
        assert!(is_subset(
            &json!({"conditions": [{"type": "B", "status": "False"}]}),
            &live
        ));
        assert!(!is_subset(
            &json!({"conditions": [{"type": "B", "status": "True"}]}),
            &live
        ));
        assert!(!is_subset(
            &json!({"conditions": [{"type": "C", "status": "True"}]}),
            &live
        ));
    }

    #[test]
    fn condition_keeps_transition_time_while_status_holds() {
        let live = json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"}]);
        let same = condition(Some(&live), "Ready", "True", "SystemReady", "ok", Some(2));
        assert_eq!(same["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(same["observedGeneration"], 2);
        let flipped = condition(Some(&live), "Ready", "False", "Pending", "no", None);
        assert_ne!(flipped["lastTransitionTime"], "2020-01-01T00:00:00Z");
    }
}
