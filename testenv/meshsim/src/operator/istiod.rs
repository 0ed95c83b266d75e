//! istiod's start-up (§6.1): the root of trust it decides on, and the root it publishes.

use super::*;

/// istiod's start-up (§6.1): for each istiod pod that kwok has started, decide the root of trust once —
/// `cacerts` if present and valid, otherwise a self-signed root kept in `istio-ca-secret` — and publish it as
/// `istio-ca-root-cert` in every namespace. A broken `cacerts` keeps istiod from becoming ready; so does the
/// `istiod-not-ready` knob.
pub async fn istiod_startup(world: &World, cluster: &Cluster) -> apply::Result<()> {
    let faults = Faults::read(cluster);
    let pod_ar = ApiResource::erase::<Pod>(&());
    let cm_ar = ApiResource::erase::<ConfigMap>(&());
    let secret_ar = ApiResource::erase::<Secret>(&());
    let pods: Vec<_> = cluster
        .pods
        .state()
        .into_iter()
        .filter(|p| p.labels().get("app").map(String::as_str) == Some("istiod"))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().is_some_and(|s| s.pod_ip.is_some()))
        .collect();
    for pod in pods {
        let ns = pod.namespace().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let published = cluster.configmap(&ns, "istio-ca-root-cert");
        let decided = published
            .as_ref()
            .is_some_and(|c| c.annotations().get(ROOT_FOR_POD) == Some(&uid));
        let mut broken = world.broken_ca(&uid);
        if !decided && broken.is_none() {
            let trust_domain = mesh_trust_domain(cluster, &ns);
            let root = match cluster.secret(&ns, "cacerts").map(|s| ca::read_cacerts(&s)) {
                Some(Plugged::Root(root)) => Some(root),
                Some(Plugged::Broken(msg)) => {
                    tracing::error!(cluster = %cluster.name, pod = %pod.name_any(), "istiod cannot start: {msg}");
                    world.set_broken_ca(&uid, &msg);
                    broken = Some(msg);
                    None
                }
                Some(Plugged::SelfSigned) | None => {
                    let existing = cluster.secret(&ns, "istio-ca-secret").and_then(|s| {
                        s.data
                            .as_ref()?
                            .get("ca-cert.pem")
                            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                    });
                    match existing {
                        Some(root) => Some(root),
                        None => {
                            let (cert, key) = match ca::self_signed_root(&trust_domain) {
                                Ok(pair) => pair,
                                Err(e) => {
                                    tracing::error!("generating a self-signed root: {e}");
                                    continue;
                                }
                            };
                            apply::apply(cluster, apply::ISTIOD, &secret_ar, json!({
                                "apiVersion": "v1", "kind": "Secret", "type": "istio.io/ca-root",
                                "metadata": {"name": "istio-ca-secret", "namespace": ns},
                                "data": {"ca-cert.pem": ca::b64(&cert), "ca-key.pem": ca::b64(&key),
                                         "cert-chain.pem": "", "root-cert.pem": ""}
                            }), None).await?;
                            tracing::info!(cluster = %cluster.name, "istiod generated a self-signed root (no cacerts at start-up)");
                            Some(cert)
                        }
                    }
                }
            };
            if let Some(root) = root {
                let mut namespaces: Vec<String> = cluster
                    .namespaces
                    .state()
                    .iter()
                    .filter_map(|n| n.metadata.name.clone())
                    .filter(|n| !n.starts_with("kube-"))
                    .collect();
                // The istiod namespace goes last: its ConfigMap records the decision.
                namespaces.sort_by_key(|n| n == &ns);
                for target in namespaces {
                    let mut meta = json!({"name": "istio-ca-root-cert", "namespace": target, "labels": {"istio.io/config": "true"}});
                    if target == ns {
                        meta["annotations"] = json!({ROOT_FOR_POD: uid});
                    }
                    let live = cluster
                        .configmap(&target, "istio-ca-root-cert")
                        .and_then(|c| to_value(&*c));
                    apply::apply(
                        cluster,
                        apply::ISTIOD,
                        &cm_ar,
                        json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": meta, "data": {"root-cert.pem": root}}),
                        live,
                    )
                    .await?;
                }
            }
        } else if decided {
            // Namespaces created after start-up get the root too.
            if let Some(root) = published
                .as_ref()
                .and_then(|c| c.data.as_ref()?.get("root-cert.pem").cloned())
            {
                for n in cluster.namespaces.state() {
                    let Some(target) = n.metadata.name.clone() else {
                        continue;
                    };
                    if target.starts_with("kube-")
                        || target == ns
                        || n.metadata.deletion_timestamp.is_some()
                    {
                        continue;
                    }
                    if cluster.configmap(&target, "istio-ca-root-cert").is_none() {
                        apply::apply(cluster, apply::ISTIOD, &cm_ar, json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": "istio-ca-root-cert", "namespace": target, "labels": {"istio.io/config": "true"}},
                            "data": {"root-cert.pem": root}}), None).await?;
                    }
                }
            }
        }
        // Readiness (§3 check 3): not ready while the CA is broken or the knob is on.
        let want_ready = broken.is_none() && !faults.istiod_not_ready;
        let is_ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if want_ready != is_ready {
            let status = if want_ready { "True" } else { "False" };
            let now = apply::now();
            let mut conditions: Vec<Value> = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .map(|cs| cs.iter().filter_map(to_value).collect())
                .unwrap_or_default();
            for c in conditions.iter_mut() {
                if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                    c["status"] = json!(status);
                    c["lastTransitionTime"] = json!(now);
                    if want_ready {
                        if let Some(o) = c.as_object_mut() {
                            o.remove("reason");
                            o.remove("message");
                        }
                    } else {
                        c["reason"] = json!("ContainersNotReady");
                        c["message"] = json!(broken.clone().unwrap_or_else(|| {
                            "containers with unready status: [discovery]".into()
                        }));
                    }
                }
            }
            let statuses: Vec<Value> = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|cs| {
                    cs.iter()
                        .filter_map(to_value)
                        .map(|mut c| {
                            c["ready"] = json!(want_ready);
                            c
                        })
                        .collect()
                })
                .unwrap_or_default();
            apply::merge_status(
                cluster,
                &pod_ar,
                &ns,
                &pod.name_any(),
                json!({
                "conditions": conditions, "containerStatuses": statuses}),
            )
            .await?;
        }
    }
    Ok(())
}
